// Seeded, reproducible traffic: mostly short answers, some medium, a tail of very long
// generations, and agent-like sessions that make several calls in a row.
import { mulberry32 } from "../sim/text";

export interface Call {
  messages: Array<{ role: string; content: string }>;
  /** Sent as max_tokens; none for a tool-calling step. */
  maxTokens?: number;
  /** Functions offered (`tools`): the sims answer with tool calls. */
  tools?: string[];
  /** Sent as `reasoning_effort`: the sims stream reasoning before the answer. */
  reasoning?: boolean;
}

export const AGENT_TOOLS = ["search", "fetch", "run_sql"];

export interface Session {
  id: string;
  kind: "short" | "medium" | "long" | "agent";
  /** Calls made one after another; each later call carries the earlier answers. */
  calls: Call[];
}

export interface MixOptions {
  seed: number;
  longTokens: number;
}

export function trafficMix(count: number, opts: MixOptions): Session[] {
  const random = mulberry32(opts.seed);
  const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const sessions: Session[] = [];
  for (let i = 0; i < count; i++) {
    const r = random();
    const id = `s${opts.seed}-${i}`;
    const ask = (n: number) => [{ role: "user", content: `${id} question ${n}` }];
    if (r < 0.7) sessions.push({ id, kind: "short", calls: [{ messages: ask(0), maxTokens: between(16, 64) }] });
    else if (r < 0.88) sessions.push({ id, kind: "medium", calls: [{ messages: ask(0), maxTokens: between(200, 500) }] });
    else if (r < 0.92) sessions.push({ id, kind: "long", calls: [{ messages: ask(0), maxTokens: opts.longTokens }] });
    else {
      const steps = between(3, 5);
      sessions.push({
        id,
        kind: "agent",
        // Every other step calls tools, as an agent alternates acting and answering (after reasoning).
        calls: Array.from({ length: steps }, (_, n) =>
          n % 2 === 0 ? { messages: ask(n), tools: AGENT_TOOLS } : { messages: ask(n), maxTokens: between(16, 48), reasoning: true },
        ),
      });
    }
  }
  return sessions;
}

/** Fixed-size streams, for the overhead scenario. */
export function uniformCalls(count: number, tokens: number, tag: string): Call[] {
  return Array.from({ length: count }, (_, i) => ({ messages: [{ role: "user", content: `${tag}-${i}` }], maxTokens: tokens }));
}
