// Carrying on a stream of tool calls by regenerating the answer and checking it. A model asked the
// same thing again (on a deterministic backend: temperature 0, or a seed) writes the same calls;
// sluice drops what the client already has, after checking it name by name and byte by byte, and
// relays what follows: the rest of a call cut inside its arguments, then the next calls. The first
// difference ends the stream with the cut named instead: a spliced answer is never sent.
import type { ToolCallDelta, UpstreamChunk } from "./chunk";
import { isCompleteJson } from "./output-cut";

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
  /** The last delivered call was cut inside its arguments: the regenerated one carries it on. */
  private readonly lastOpen: boolean;

  /** `delivered`: the client's calls in index order, all complete but maybe the last. */
  constructor(private readonly delivered: ReadonlyArray<{ name: string; arguments: string }>) {
    this.seen = delivered.map(() => ({ name: "", arguments: "" }));
    this.lastOpen = delivered.length > 0 && !isCompleteJson(delivered[delivered.length - 1]!.arguments);
  }

  take(chunk: UpstreamChunk): RegenerationVerdict {
    if (this.verified) return { kind: "relay", chunk };
    if (chunk.content || chunk.reasoning) return { kind: "diverged", why: "the regenerated answer has text before its tool calls" };
    const calls = chunk.toolCalls ?? [];
    const fresh: ToolCallDelta[] = [];
    for (const call of calls) {
      const index = Number.isInteger(call.index) ? (call.index as number) : 0;
      const mine = this.seen[index];
      if (!mine) {
        fresh.push(call);
        continue;
      }
      const want = this.delivered[index]!;
      const args = call.function?.arguments ?? "";
      // What of this fragment the client already has; the rest carries an open call on.
      const known = Math.max(0, Math.min(args.length, want.arguments.length - mine.arguments.length));
      mine.name += call.function?.name ?? "";
      mine.arguments += args;
      if (mine.name !== want.name.slice(0, mine.name.length) || !mine.arguments.startsWith(want.arguments.slice(0, mine.arguments.length)))
        return { kind: "diverged", why: `tool call ${index} came out different` };
      if (known < args.length) {
        if (!this.lastOpen || index !== this.delivered.length - 1) return { kind: "diverged", why: `tool call ${index} came out longer` };
        fresh.push({ index, function: { arguments: args.slice(known) } });
      }
    }
    if (fresh.length === 0 && chunk.finishReason === null) {
      if (chunk.isToken) this.skipped++;
      return { kind: "skip" };
    }
    // New output, or the finish: everything the client has must have come out by now.
    const covered = this.seen.every((s, i) => s.name === this.delivered[i]!.name && s.arguments.startsWith(this.delivered[i]!.arguments));
    if (!covered) return { kind: "diverged", why: "the regenerated answer moved on before repeating what was delivered" };
    this.verified = true;
    if (fresh.length === calls.length && fresh.every((f, i) => f === calls[i])) return { kind: "relay", chunk };
    // Only the new part goes out (the parsed chunk is ours to rewrite).
    const choice = chunk.raw.choices![0]!;
    const { tool_calls: _, ...rest } = choice.delta ?? {};
    choice.delta = fresh.length ? { ...rest, tool_calls: fresh } : rest;
    return { kind: "relay", chunk: { ...chunk, toolCalls: fresh.length ? fresh : undefined } };
  }
}
