// Reads that wait for several events (a busy isolate) against a real sim: the text stays exact, a
// stream that breaks or stalls mid-batch ends with the right error and only a prefix delivered.
import { beforeEach, describe, expect, it } from "vitest";
import { UpstreamAttempt } from "../../src/dispatch/attempt";
import type { AttemptError } from "../../src/dispatch/upstream-error";
import { ReadSizePolicy } from "../../src/dispatch/read-size";
import { expectedText, MESSAGES, resetSims, simUrl } from "./helpers";

const TOKENS = 40;

/** A policy that has just seen far more events than it allows reads: four events per read. */
function busyIsolate(): ReadSizePolicy {
  const policy = new ReadSizePolicy({ readsPerSecond: 1_000, maxHoldMs: 1_000, maxEventsPerRead: 4 });
  policy.note(1_000_000, Date.now());
  return policy;
}

/** A policy whose isolate is never busy enough to batch. */
const quietIsolate = () => new ReadSizePolicy({ readsPerSecond: 1e9, maxHoldMs: 1_000, maxEventsPerRead: 4 });

function attempt(fault: Record<string, unknown> = {}, idleMs = 5_000, readSizes = busyIsolate()): UpstreamAttempt {
  return new UpstreamAttempt({
    grant: {
      attempt: 1,
      backend: { id: "a", url: simUrl("a"), model: "sim-model", resume: true, alias: "chat" },
      delayMs: 0,
      probe: false,
      continuation: false,
    },
    body: { model: "chat", messages: MESSAGES, max_tokens: TOKENS, stream: true, sim_fault: fault },
    partialText: "",
    deliveredTokens: 0,
    timeouts: { connectMs: 5_000, firstTokenMs: 5_000, idleMs, totalMs: 30_000 },
    deadline: Date.now() + 30_000,
    signal: new AbortController().signal,
    readSizes,
  });
}

/** Reads the attempt to its end: the text, the events per read, and the error it ended with. */
async function drain(a: UpstreamAttempt): Promise<{ text: string; perRead: number[]; error?: AttemptError }> {
  let text = "";
  const perRead: number[] = [];
  try {
    await a.open();
    for (;;) {
      const events = await a.next();
      perRead.push(events.length);
      for (const e of events) if (e.kind === "chunk") text += e.chunk.content;
      if (events.some((e) => e.kind === "done")) return { text, perRead };
    }
  } catch (err) {
    return { text, perRead, error: err as AttemptError };
  } finally {
    a.release();
  }
}

describe("batched upstream reads", () => {
  beforeEach(resetSims);

  it("take several events per read after the first token, and the text stays exact", async () => {
    const { text, perRead, error } = await drain(attempt());
    expect(error).toBeUndefined();
    expect(text).toBe(expectedText(MESSAGES, TOKENS));
    // The role delta and the first tokens come one read at a time; then the batches.
    expect(Math.max(...perRead)).toBeGreaterThanOrEqual(3);
    expect(perRead.length).toBeLessThan(TOKENS / 2);
  });

  it("take one event per read in a quiet isolate", async () => {
    const { text, perRead } = await drain(attempt({}, 5_000, quietIsolate()));
    expect(text).toBe(expectedText(MESSAGES, TOKENS));
    // One read per event (a slow moment of the test machine may still join two).
    expect(perRead.length).toBeGreaterThanOrEqual(TOKENS * 0.75);
  });

  it("end with upstream_truncated and a prefix of the text when the backend drops the stream mid-batch", async () => {
    const { text, error } = await drain(attempt({ disconnect_after: 13 }));
    expect(error?.code).toBe("upstream_truncated");
    expect(expectedText(MESSAGES, TOKENS).startsWith(text)).toBe(true);
    expect(text.length).toBeGreaterThan(0);
  });

  it("end with idle_timeout when the backend stalls mid-batch, having delivered only a prefix", async () => {
    const { text, error } = await drain(attempt({ hang: true, hang_after: 13 }, 300));
    expect(error?.code).toBe("idle_timeout");
    expect(expectedText(MESSAGES, TOKENS).startsWith(text)).toBe(true);
  });
});
