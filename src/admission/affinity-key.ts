// Which backend a request would rather have: the one that served its conversation before holds the
// conversation's prefix in its KV cache, where a prefill is skipped. A request's affinity is its
// session as the client names it (an `x-session-id` header, `prompt_cache_key`, `user`; the Anthropic
// and Responses surfaces map `metadata.user_id` and `user` to `user`), or else its conversation's
// opening (system and developer messages, tools, the first user message), which every later turn
// resends. The gate orders equally near backends by it (gate/core/affinity.ts).
import type { ChatRequest } from "../config/chat-request";
import { fnv1a } from "../hash";

/** At most this much of a conversation's opening is hashed (its start tells conversations apart). */
const MAX_OPENING_CHARS = 64 * 1024;

/** The request's affinity key: 8 hex digits, the same for every turn of a conversation or session. */
export function affinityKey(body: ChatRequest, session?: string): string {
  const named = [session, body.prompt_cache_key, body.user].find((v): v is string => typeof v === "string" && v !== "");
  return fnv1a(named !== undefined ? `session:${named}` : `opening:${opening(body)}`)
    .toString(16)
    .padStart(8, "0");
}

function opening(body: ChatRequest): string {
  const parts: string[] = [];
  let length = 0;
  const add = (part: string) => {
    parts.push(part.slice(0, MAX_OPENING_CHARS - length));
    length += parts[parts.length - 1]!.length;
  };
  const firstUser = body.messages.find((m) => m.role === "user");
  for (const m of body.messages) {
    if (length >= MAX_OPENING_CHARS) break;
    // Text is taken as it is (no copy of a long prompt); content parts as JSON.
    if (m.role === "system" || m.role === "developer" || m === firstUser)
      add(`${m.role}:${typeof m.content === "string" ? m.content : JSON.stringify(m.content ?? "")}`);
    if (m === firstUser) break;
  }
  if (body.tools !== undefined && length < MAX_OPENING_CHARS) add(`tools:${JSON.stringify(body.tools)}`);
  return parts.join("\n");
}
