// The sim's deterministic "model": a completion is a pure function of (model, messages, seed,
// max tokens). Tests rebuild the expected text with the same function, which is how they prove
// that a resumed or replayed stream lost and duplicated nothing.

const VOCABULARY = (
  "the of and to in is that for it as with was on be by at this from or an are which but not have had " +
  "they you were their one all we can her has there been if more when will would who so no gpu token " +
  "stream queue router edge backend region latency budget breaker resume signal shard lease ticket"
).split(" ");

export interface CompletionKey {
  model: string;
  /** Conversation messages, without a trailing partial assistant message. */
  messages: unknown[];
  seed?: number;
  maxTokens?: number;
}

export interface Completion {
  tokens: string[];
  finishReason: "stop" | "length";
}

export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The full completion. Without max tokens it stops naturally after 16-63 tokens; with it, it runs
 * to exactly that many (finish "length"), so benchmarks choose output lengths.
 */
export function completionFor(key: CompletionKey): Completion {
  const { hash, next } = tokenSource(key);
  const length = key.maxTokens ?? naturalLength(hash);
  const tokens: string[] = [];
  for (let i = 0; i < length; i++) tokens.push(next());
  return { tokens, finishReason: key.maxTokens === undefined ? "stop" : "length" };
}

/**
 * What is left after `prefix` (text already produced): the rest of the same completion, as a
 * backend honouring continue_final_message produces it. `maxTokensLeft` counts new tokens only.
 */
export function continuationFor(key: Omit<CompletionKey, "maxTokens">, prefix: string, maxTokensLeft?: number): Completion {
  const { hash, next } = tokenSource(key);
  let consumed = "";
  let k = 0;
  while (consumed.length < prefix.length) {
    consumed += next();
    k++;
  }
  const total = maxTokensLeft === undefined ? naturalLength(hash) : k + maxTokensLeft;
  // A prefix that ends inside a token gets the rest of that token first.
  const tokens = consumed.length > prefix.length ? [consumed.slice(prefix.length)] : [];
  for (let i = k; i < total; i++) tokens.push(next());
  return { tokens, finishReason: maxTokensLeft === undefined ? "stop" : "length" };
}

function naturalLength(hash: number): number {
  return 16 + (hash % 48);
}

function tokenSource(key: Omit<CompletionKey, "maxTokens">): { hash: number; next: () => string } {
  const hash = fnv1a(JSON.stringify([key.model, key.messages, key.seed ?? null]));
  const random = mulberry32(hash);
  let i = 0;
  return { hash, next: () => (i++ === 0 ? "" : " ") + VOCABULARY[Math.floor(random() * VOCABULARY.length)] };
}

/** The text a client should end up with for this request. */
export function expectedText(key: CompletionKey): string {
  return completionFor(key).tokens.join("");
}
