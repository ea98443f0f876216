// Carrying on reasoning and tool calls by regenerating the answer and checking it. A model asked the
// same thing again (on a deterministic backend: temperature 0, or a seed) thinks and calls the same;
// sluice drops what the client already has, after checking it byte by byte (reasoning, then each
// call's name and arguments), and relays what follows: the rest of the reasoning or of a call cut
// inside its arguments, then what comes next. The first difference ends the stream with the cut
// named instead: a spliced answer is never sent.
import type { ToolCallDelta, UpstreamChunk } from "./chunk";
import { type DeliveredOutput, isCompleteJson } from "./output-cut";

export type RegenerationVerdict =
  /** Part of what the client has: not relayed. */
  | { kind: "skip" }
  /** New output: relay this chunk (with the calls the client has taken out of it). */
  | { kind: "relay"; chunk: UpstreamChunk }
  | { kind: "diverged"; why: string };

export class Regeneration {
  private readonly seen: Array<{ name: string; arguments: string }>;
  private seenReasoning = "";
  /** Output tokens dropped as already delivered (paid for twice). */
  skipped = 0;
  private verified = false;
  /** The last delivered call was cut inside its arguments: the regenerated one carries it on. */
  private readonly lastOpen: boolean;

  constructor(private readonly delivered: DeliveredOutput) {
    const calls = delivered.toolCalls;
    this.seen = calls.map(() => ({ name: "", arguments: "" }));
    this.lastOpen = calls.length > 0 && !isCompleteJson(calls[calls.length - 1]!.arguments);
  }

  take(chunk: UpstreamChunk): RegenerationVerdict {
    if (this.verified) return { kind: "relay", chunk };
    const calls = chunk.toolCalls ?? [];
    // Reasoning first: the part the client has is dropped; more of it only while no call was delivered.
    const want = this.delivered.reasoning;
    const known = Math.max(0, Math.min(chunk.reasoning.length, want.length - this.seenReasoning.length));
    this.seenReasoning += chunk.reasoning;
    const overlap = Math.min(this.seenReasoning.length, want.length);
    if (this.seenReasoning.slice(0, overlap) !== want.slice(0, overlap))
      return { kind: "diverged", why: "the reasoning came out different" };
    const moreReasoning = chunk.reasoning.slice(known);
    if (moreReasoning && this.delivered.toolCalls.length > 0) return { kind: "diverged", why: "the reasoning came out longer" };
    const reasoningCovered = this.seenReasoning.length >= want.length;
    if ((chunk.content || calls.length > 0) && !reasoningCovered)
      return { kind: "diverged", why: "the answer moved on before its reasoning was repeated" };
    const fresh: ToolCallDelta[] = [];
    for (const call of calls) {
      const index = Number.isInteger(call.index) ? (call.index as number) : 0;
      const mine = this.seen[index];
      if (!mine) {
        fresh.push(call);
        continue;
      }
      const wantCall = this.delivered.toolCalls[index]!;
      const args = call.function?.arguments ?? "";
      // What of this fragment the client already has; the rest carries an open call on.
      const knownArgs = Math.max(0, Math.min(args.length, wantCall.arguments.length - mine.arguments.length));
      mine.name += call.function?.name ?? "";
      mine.arguments += args;
      if (
        mine.name !== wantCall.name.slice(0, mine.name.length) ||
        !mine.arguments.startsWith(wantCall.arguments.slice(0, mine.arguments.length))
      )
        return { kind: "diverged", why: `tool call ${index} came out different` };
      if (knownArgs < args.length) {
        if (!this.lastOpen || index !== this.delivered.toolCalls.length - 1)
          return { kind: "diverged", why: `tool call ${index} came out longer` };
        fresh.push({ index, function: { arguments: args.slice(knownArgs) } });
      }
    }
    const news = moreReasoning !== "" || chunk.content !== "" || fresh.length > 0 || chunk.finishReason !== null;
    if (!news) {
      if (chunk.isToken) this.skipped++;
      return { kind: "skip" };
    }
    // New output, or the finish: every call the client has must have come out by now (its
    // reasoning may still go on when it had no calls).
    const covered = this.seen.every(
      (s, i) => s.name === this.delivered.toolCalls[i]!.name && s.arguments.startsWith(this.delivered.toolCalls[i]!.arguments),
    );
    if (!covered || !reasoningCovered)
      return { kind: "diverged", why: "the regenerated answer moved on before repeating what was delivered" };
    this.verified = true;
    const unchanged = moreReasoning === chunk.reasoning && fresh.length === calls.length && fresh.every((f, i) => f === calls[i]);
    if (unchanged) return { kind: "relay", chunk };
    // Only the new part goes out (the parsed chunk is ours to rewrite).
    const choice = chunk.raw.choices![0]!;
    const { tool_calls: _calls, reasoning_content: _reasoning, ...rest } = choice.delta ?? {};
    choice.delta = {
      ...rest,
      ...(moreReasoning ? { reasoning_content: moreReasoning } : {}),
      ...(fresh.length ? { tool_calls: fresh } : {}),
    };
    return { kind: "relay", chunk: { ...chunk, reasoning: moreReasoning, toolCalls: fresh.length ? fresh : undefined } };
  }
}
