// Carrying on after complete tool calls by regenerating the answer and checking it. A model asked
// the same thing again (on a deterministic backend: temperature 0, or a seed) writes the same calls;
// sluice drops those the client already has, after checking them name by name and byte by byte,
// and relays what follows. The first difference ends the stream with cut "after_tool_call" instead:
// a spliced answer is never sent.
import type { UpstreamChunk } from "./chunk";

export type RegenerationVerdict =
  /** Part of what the client has: not relayed. */
  | { kind: "skip" }
  /** New output: relay this chunk (with the calls the client has taken out of it). */
  | { kind: "relay"; chunk: UpstreamChunk }
  | { kind: "diverged"; why: string };

export class Regeneration {
  private readonly seen: Array<{ name: string; arguments: string }>;
  /** Output tokens dropped as already delivered (paid for twice). */
  skipped = 0;
  private verified = false;

  constructor(private readonly delivered: ReadonlyArray<{ name: string; arguments: string }>) {
    this.seen = delivered.map(() => ({ name: "", arguments: "" }));
  }

  take(chunk: UpstreamChunk): RegenerationVerdict {
    if (this.verified) return { kind: "relay", chunk };
    if (chunk.content || chunk.reasoning) return { kind: "diverged", why: "the regenerated answer has text before its tool calls" };
    const calls = chunk.toolCalls ?? [];
    const fresh = [];
    for (const call of calls) {
      const index = Number.isInteger(call.index) ? (call.index as number) : 0;
      const mine = this.seen[index];
      if (!mine) {
        fresh.push(call);
        continue;
      }
      mine.name += call.function?.name ?? "";
      mine.arguments += call.function?.arguments ?? "";
      const want = this.delivered[index]!;
      if (!want.name.startsWith(mine.name) || !want.arguments.startsWith(mine.arguments))
        return { kind: "diverged", why: `tool call ${index} came out different` };
    }
    const moreToCome = fresh.length === 0 && chunk.finishReason === null;
    if (moreToCome) {
      if (chunk.isToken) this.skipped++;
      return { kind: "skip" };
    }
    // New calls, or the finish: everything the client has must have come out whole by now.
    const whole = this.seen.every((s, i) => s.name === this.delivered[i]!.name && s.arguments === this.delivered[i]!.arguments);
    if (!whole) return { kind: "diverged", why: "the regenerated answer moved on before repeating the delivered calls" };
    this.verified = true;
    if (fresh.length === calls.length) return { kind: "relay", chunk };
    // Take the calls the client has out of the chunk (the parsed chunk is ours to rewrite).
    const choice = chunk.raw.choices![0]!;
    const { tool_calls: _, ...rest } = choice.delta ?? {};
    choice.delta = fresh.length ? { ...rest, tool_calls: fresh } : rest;
    return { kind: "relay", chunk: { ...chunk, toolCalls: fresh.length ? fresh : undefined } };
  }
}
