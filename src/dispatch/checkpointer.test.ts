import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Checkpoint, CheckpointAck } from "../gate/core/protocol";
import { CHECKPOINT_MS, Checkpointer } from "./checkpointer";

describe("Checkpointer", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  function setup() {
    const sent: Checkpoint[] = [];
    const answers: CheckpointAck[] = [];
    const target = {
      checkpoint: async (p: Checkpoint) => {
        sent.push(p);
        return answers.shift()!;
      },
      renew: async () => true,
      progress: () => ({ text: "t", tokens: 1 }),
    };
    return { sent, answers, checkpointer: new Checkpointer(target, 0, true, 10_000) };
  }
  const later = () => vi.advanceTimersByTime(CHECKPOINT_MS);

  it("forgets what the journal holds and sends the rest again", async () => {
    const { sent, answers, checkpointer } = setup();
    checkpointer.add("1");
    checkpointer.add("2");
    later();
    answers.push({ held: true, recorded: 1 });
    await checkpointer.tick();
    checkpointer.add("3");
    later();
    answers.push({ held: true, recorded: 3 });
    await checkpointer.tick();
    expect(sent.map((p) => [p.from, p.chunks])).toEqual([
      [0, ["1", "2"]],
      [1, ["2", "3"]],
    ]);
    expect(checkpointer.final()).toMatchObject({ from: 3, chunks: [] });
  });

  it("stops recording when the entry is no longer this request's", async () => {
    const { answers, checkpointer } = setup();
    checkpointer.add("1");
    later();
    answers.push({ held: true, recorded: null });
    await checkpointer.tick();
    checkpointer.add("2");
    expect(checkpointer.final()).toBeUndefined();
  });

  it("after the journal lost chunks it had taken, still tells settle where the entry should be", async () => {
    const { answers, checkpointer } = setup();
    checkpointer.add("1");
    later();
    answers.push({ held: true, recorded: 1 });
    await checkpointer.tick();
    checkpointer.add("2");
    later();
    answers.push({ held: true, recorded: 0 });
    await checkpointer.tick();
    checkpointer.add("3");
    expect(checkpointer.final()).toMatchObject({ from: 1, chunks: [] });
  });
});
