// How much a read waits for: one event in a quiet isolate, before the first token and for slow
// streams; several under load, never more than the hold limit of the stream's own pace.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { EVENT_READ_BYTES, isolateReadSizes, ReadSizePolicy, StreamPace } from "./read-size";

const OPTIONS = { readsPerSecond: 1_000, maxHoldMs: 50, maxEventsPerRead: 8 };

/** A stream that has been read every `gapMs`, one 200-byte event at a time. */
function paceOf(gapMs: number, reads = 10): StreamPace {
  const pace = new StreamPace();
  for (let i = 0; i < reads; i++) pace.note(200, 1, i * gapMs);
  return pace;
}

/** A policy that saw `perSecond` events in the second before `now`. */
function loaded(perSecond: number, now = 10_000): ReadSizePolicy {
  const policy = new ReadSizePolicy(OPTIONS);
  policy.note(perSecond, now - 1_000);
  return policy;
}

describe("StreamPace", () => {
  it("learns the event size and the gap between events, per event of a batched read", () => {
    const pace = new StreamPace();
    pace.note(400, 2, 0);
    expect(pace.gapMs).toBeUndefined();
    pace.note(600, 3, 30);
    expect(pace.eventBytes).toBe(200);
    expect(pace.gapMs).toBe(10);
    pace.note(0, 0, 1_000); // a read that parsed no event changes nothing
    expect(pace.gapMs).toBe(10);
  });
});

describe("ReadSizePolicy", () => {
  it("reads one event at a time while the isolate relays fewer events than the threshold", () => {
    expect(loaded(900).eventsPerRead(paceOf(10), 10_000)).toBe(1);
    expect(loaded(900).minBytes(paceOf(10), 10_000)).toBe(EVENT_READ_BYTES);
  });

  it("reads several events under load, as many as the rate asks for", () => {
    expect(loaded(3_500).eventsPerRead(paceOf(10), 10_000)).toBe(4);
    // Three events at 90% of 200 bytes, then the start of the fourth.
    expect(loaded(3_500).minBytes(paceOf(10), 10_000)).toBe(540 + EVENT_READ_BYTES);
    expect(loaded(100_000).eventsPerRead(paceOf(1), 10_000)).toBe(8);
  });

  it("never holds back more than maxHoldMs of a stream's expected events, and nothing before its pace is known", () => {
    const busy = loaded(100_000);
    expect(busy.eventsPerRead(paceOf(10), 10_000)).toBe(6);
    expect(busy.eventsPerRead(paceOf(60), 10_000)).toBe(1);
    expect(busy.eventsPerRead(new StreamPace(), 10_000)).toBe(1);
    expect(busy.eventsPerRead(paceOf(10, 1), 10_000)).toBe(1);
  });

  it("forgets load older than a second, and weighs the last second by how much of it is past", () => {
    const policy = loaded(4_000, 10_000);
    expect(policy.eventsPerSecond(10_000)).toBe(4_000);
    expect(policy.eventsPerSecond(10_500)).toBe(2_000);
    expect(policy.eventsPerSecond(11_000)).toBe(0);
    expect(policy.eventsPerRead(paceOf(10), 12_000)).toBe(1);
  });

  it("keeps the held time within the limit for any pace and load (property)", () => {
    fc.assert(
      fc.property(fc.double({ min: 0.5, max: 5_000, noNaN: true }), fc.integer({ min: 0, max: 1_000_000 }), (gapMs, perSecond) => {
        const k = loaded(perSecond).eventsPerRead(paceOf(gapMs), 10_000);
        expect(k).toBeGreaterThanOrEqual(1);
        expect(k).toBeLessThanOrEqual(OPTIONS.maxEventsPerRead);
        if (k > 1) expect((k - 1) * paceOf(gapMs).gapMs!).toBeLessThanOrEqual(OPTIONS.maxHoldMs + 1e-9);
      }),
    );
  });
});

describe("isolateReadSizes", () => {
  it("shares one policy per setting, takes 0 as batching off, and falls back to 50 ms on a bad value", () => {
    expect(isolateReadSizes(undefined)).toBe(isolateReadSizes("50"));
    expect(isolateReadSizes("nonsense")).toBe(isolateReadSizes(undefined));
    expect(isolateReadSizes("-5")).toBe(isolateReadSizes(undefined));
    const off = isolateReadSizes("0");
    off.note(1_000_000, 10_000);
    expect(off.eventsPerRead(paceOf(1), 10_000)).toBe(1);
    const on = isolateReadSizes("100");
    on.note(1_000_000, 10_000);
    expect(on.eventsPerRead(paceOf(10), 10_000)).toBe(8);
  });
});
