import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CircuitBreaker, type BreakerOptions } from "./breaker";

const opts: BreakerOptions = {
  failureRate: 0.5,
  minRequests: 4,
  windowMs: 10_000,
  cooldownMs: 1_000,
  maxCooldownMs: 8_000,
  consecutiveFailures: 5,
  halfOpenProbes: 1,
};

describe("CircuitBreaker", () => {
  it("opens at the failure rate once minRequests is reached", () => {
    const b = new CircuitBreaker(opts);
    b.onSuccess(0);
    b.onFailure(1);
    b.onSuccess(2);
    expect(b.stateAt(3)).toBe("closed"); // 1/3 failed, and under minRequests anyway
    b.onFailure(3);
    expect(b.stateAt(4)).toBe("open"); // 2/4 = 0.5
    expect(b.allows(4)).toBe(false);
    expect(b.retryAfterMs(4)).toBe(1_000 - 1);
  });

  it("in half-open, a straggler's failure neither reopens the circuit nor frees the probe's place", () => {
    const b = new CircuitBreaker(opts);
    for (let t = 0; t < 5; t++) b.onFailure(t); // consecutive failures: open at t=4
    expect(b.stateAt(4)).toBe("open");
    expect(b.onAttempt(1_004)).toEqual({ probe: true }); // half-open: the one probe goes out
    b.onFailure(1_010, false); // an attempt from before the trip fails late
    expect(b.stateAt(1_010)).toBe("half-open");
    expect(b.allows(1_010)).toBe(false); // the probe is still in flight
    b.onFailure(1_020, true); // the probe fails: open again, cooldown doubled
    expect(b.stateAt(1_020)).toBe("open");
    expect(b.retryAfterMs(1_020)).toBe(2_000);
  });

  it("opens after consecutive failures even below minRequests' rate", () => {
    const b = new CircuitBreaker({ ...opts, minRequests: 1000 });
    for (let t = 0; t < 4; t++) b.onFailure(t);
    expect(b.stateAt(5)).toBe("closed");
    b.onFailure(5);
    expect(b.stateAt(6)).toBe("open");
  });

  it("forgets failures older than the window", () => {
    const b = new CircuitBreaker(opts);
    b.onFailure(0);
    b.onFailure(1);
    b.onFailure(2);
    b.onSuccess(20_000);
    b.onSuccess(20_001);
    b.onSuccess(20_002);
    b.onFailure(20_003);
    expect(b.stateAt(20_004)).toBe("closed"); // 1/4 in the window
  });

  it("goes half-open after the cooldown, lets one probe through, and closes on its success", () => {
    const b = new CircuitBreaker(opts);
    for (let t = 0; t < 5; t++) b.onFailure(t);
    expect(b.stateAt(500)).toBe("open");
    expect(b.stateAt(1_004)).toBe("half-open");
    expect(b.allows(1_004)).toBe(true);
    const { probe } = b.onAttempt(1_004);
    expect(probe).toBe(true);
    expect(b.allows(1_005)).toBe(false); // one probe at a time
    b.onSuccess(1_100, true);
    expect(b.stateAt(1_101)).toBe("closed");
    expect(b.allows(1_101)).toBe(true);
  });

  it("reopens with a doubled cooldown when a probe fails, capped", () => {
    const b = new CircuitBreaker(opts);
    for (let t = 0; t < 5; t++) b.onFailure(t);
    let now = 4;
    const cooldowns: number[] = [];
    for (let i = 0; i < 6; i++) {
      cooldowns.push(b.cooldownMs());
      now += b.cooldownMs();
      expect(b.stateAt(now)).toBe("half-open");
      b.onAttempt(now);
      b.onFailure(now, true);
      expect(b.stateAt(now)).toBe("open");
    }
    expect(cooldowns).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  });

  it("frees the probe when the probe's client left", () => {
    const b = new CircuitBreaker(opts);
    for (let t = 0; t < 5; t++) b.onFailure(t);
    b.onAttempt(2_000);
    expect(b.allows(2_000)).toBe(false);
    b.onAbandon(true);
    expect(b.allows(2_000)).toBe(true);
  });

  it("counts a probe still hung from an earlier half-open spell against the next one", () => {
    const b = new CircuitBreaker({ ...opts, halfOpenProbes: 2 });
    for (let t = 0; t < 5; t++) b.onFailure(t);
    // Half-open at 1,004: one probe hangs, the other fails and opens the breaker again (2 s).
    const hung = b.onAttempt(1_004);
    const failed = b.onAttempt(1_004);
    b.onFailure(1_004, failed.probe);
    expect(b.stateAt(2_000)).toBe("open");
    // Half-open again at 3,004: the hung probe still holds one of the two places.
    expect(b.allows(3_004)).toBe(true);
    b.onAttempt(3_004);
    expect(b.allows(3_004)).toBe(false);
    b.onAbandon(hung.probe);
    expect(b.allows(3_004)).toBe(true);
  });

  it("survives a snapshot round trip", () => {
    const b = new CircuitBreaker(opts);
    for (let t = 0; t < 5; t++) b.onFailure(t);
    const restored = CircuitBreaker.restore(opts, JSON.parse(JSON.stringify(b.snapshot())));
    expect(restored.stateAt(10)).toBe("open");
    expect(restored.retryAfterMs(10)).toBe(b.retryAfterMs(10));
  });

  it("never lets more than halfOpenProbes through, and never passes while open (property)", () => {
    const event = fc.record({
      dt: fc.integer({ min: 0, max: 3_000 }),
      kind: fc.constantFrom("attempt-ok", "attempt-fail", "attempt-hang", "finish"),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 120 }), fc.integer({ min: 1, max: 3 }), (events, probes) => {
        const b = new CircuitBreaker({ ...opts, halfOpenProbes: probes });
        let now = 0;
        const pending: Array<{ probe: boolean; ok: boolean }> = [];
        for (const e of events) {
          now += e.dt;
          if (e.kind === "finish") {
            const p = pending.shift();
            if (p) p.ok ? b.onSuccess(now, p.probe) : b.onFailure(now, p.probe);
            continue;
          }
          const state = b.stateAt(now);
          if (!b.allows(now)) {
            expect(state === "open" || state === "half-open").toBe(true);
            continue;
          }
          expect(state).not.toBe("open");
          const { probe } = b.onAttempt(now);
          if (probe) expect(pending.filter((p) => p.probe).length).toBeLessThan(probes);
          pending.push({ probe, ok: e.kind === "attempt-ok" });
          if (e.kind !== "attempt-hang") {
            const p = pending.pop()!;
            p.ok ? b.onSuccess(now, p.probe) : b.onFailure(now, p.probe);
          }
        }
      }),
      // A probe still hung from an earlier half-open spell is found only by long runs.
      { numRuns: 2_000 },
    );
  });
});
