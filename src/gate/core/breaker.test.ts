import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CircuitBreaker, type BreakerOptions, type Unheard } from "./breaker";

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

  /** `count` unheard attempts started at `at`, beside a failed attempt that started at `startedAt`. */
  const unheard = (startedAt: number, ...runs: Array<{ at: number; count: number }>): Unheard => ({
    startedAt,
    since: (from) => runs.filter((r) => r.at >= from && r.at <= startedAt).reduce((n, r) => n + r.count, 0),
  });

  it("counts attempts that run without having told their first token as successes: fast failures beside them do not trip", () => {
    const b = new CircuitBreaker(opts);
    // Five failures in a row of attempts started at 0, beside eight started with them, unheard.
    for (let t = 10; t < 15; t++) b.onFailure(t, false, unheard(0, { at: 0, count: 8 }));
    expect(b.stateAt(15)).toBe("closed"); // 5 / (5 + 8) < 0.5, and the run waits for them
    b.onFailure(16, false, unheard(0, { at: 0, count: 4 }));
    expect(b.stateAt(16)).toBe("open"); // 6 / (6 + 4) >= 0.5
  });

  it("a run of failures that began after the unheard attempts started trips (an outage beside long streams)", () => {
    const b = new CircuitBreaker({ ...opts, minRequests: 1000 });
    // Forty streams from before the outage run on; every attempt since fails fast (one started
    // after each failed one has not run as long yet, and says nothing).
    for (let t = 100; t < 104; t++) b.onFailure(t + 5, false, unheard(t, { at: 0, count: 40 }, { at: t + 1, count: 1 }));
    expect(b.stateAt(110)).toBe("closed");
    b.onFailure(110, false, unheard(105, { at: 0, count: 40 }));
    expect(b.stateAt(110)).toBe("open");
  });

  it("a run of failures does not trip while an unheard attempt that may have answered during it runs", () => {
    const b = new CircuitBreaker({ ...opts, minRequests: 1000 });
    for (let t = 0; t < 6; t++) b.onFailure(t + 5, false, unheard(t, { at: 0, count: 1 }));
    expect(b.stateAt(11)).toBe("closed");
    b.onFailure(12, false, unheard(7)); // it ended (its report told the gate how)
    expect(b.stateAt(12)).toBe("open");
  });

  it("unheard attempts only ever hold a trip back, never cause one (property)", () => {
    const event = fc.record({
      dt: fc.integer({ min: 0, max: 2_000 }),
      ok: fc.boolean(),
      took: fc.integer({ min: 0, max: 3_000 }),
      runs: fc.array(fc.record({ ago: fc.integer({ min: 0, max: 5_000 }), count: fc.integer({ min: 1, max: 4 }) }), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 80 }), (events) => {
        // Two breakers hear the same outcomes; only one is told of unheard attempts. Until their
        // states first differ they are in step, and then the told one is the one still closed.
        const told = new CircuitBreaker(opts);
        const deaf = new CircuitBreaker(opts);
        let now = 0;
        for (const e of events) {
          now += e.dt;
          if (!told.allows(now) || !deaf.allows(now)) continue;
          const probe = told.onAttempt(now).probe;
          deaf.onAttempt(now);
          if (e.ok) {
            told.onSuccess(now, probe);
            deaf.onSuccess(now, probe);
          } else {
            told.onFailure(now, probe, unheard(now - e.took, ...e.runs.map((r) => ({ at: now - e.took - r.ago, count: r.count }))));
            deaf.onFailure(now, probe);
          }
          const [a, b] = [told.stateAt(now), deaf.stateAt(now)];
          if (a !== b) {
            expect(a).toBe("closed");
            expect(b).toBe("open");
            return;
          }
        }
      }),
      { numRuns: 1_000 },
    );
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
