import { describe, expect, it } from "vitest";
import { breakersOpenFor, pickBackend } from "./backend-picker";
import { testBackendView, testConfig } from "./test-host";

const config = testConfig({ breaker: { consecutiveFailures: 1, minRequests: 100, cooldownMs: 1_000 } });
const plan = ["a", "b", "c"].map((backendId) => ({ backendId, alias: "chat" }));

function view(...args: Parameters<typeof testBackendView> extends [unknown, ...infer R] ? R : never) {
  return testBackendView(config, ...args);
}

describe("pickBackend", () => {
  it("takes the first backend that can take an attempt, skipping full ones and open circuits", () => {
    const { v, breakers } = view({ a: 32 });
    expect(pickBackend(v, plan, 0, false, 0)).toEqual({ ok: true, cursor: 1, delayMs: 0 });
    breakers.get("b")!.onFailure(0);
    expect(pickBackend(v, plan, 0, false, 0)).toEqual({ ok: true, cursor: 2, delayMs: 0 });
  });

  it("counts a backend full at its learned limit, below its maxConcurrency", () => {
    const { v } = view({ a: 8 }, {}, { a: 8 });
    expect(pickBackend(v, plan, 0, false, 0)).toEqual({ ok: true, cursor: 1, delayMs: 0 });
    const { v: all } = view({ a: 8, b: 8, c: 8 }, {}, { a: 8, b: 8, c: 8 });
    expect(pickBackend(all, plan, 0, false, 0)).toEqual({ ok: false, reason: "capacity" });
  });

  it("passes over a server that queues requests of its own for one of the same model that queues fewer", () => {
    // a reports 5 waiting inside it, b 2, c none: the first attempt goes to c.
    expect(pickBackend(view({}, {}, {}, { a: 5, b: 2, c: 0 }).v, plan, 0, false, 0)).toEqual({
      ok: true,
      cursor: 2,
      delayMs: 0,
      byLoad: true,
    });
    // A server without a report counts as queueing nothing; one that queues nothing keeps its place first.
    expect(pickBackend(view({}, {}, {}, { a: 5 }).v, plan, 0, false, 0)).toMatchObject({ cursor: 1 });
    expect(pickBackend(view({}, {}, {}, { a: 0, b: 0 }).v, plan, 0, false, 0)).toEqual({ ok: true, cursor: 0, delayMs: 0 });
    // A backend full while its server queues is passed over by load too (its cap: reported-capacity.ts).
    expect(pickBackend(view({ a: 32 }, {}, {}, { a: 2 }).v, plan, 0, false, 0)).toEqual({ ok: true, cursor: 1, delayMs: 0, byLoad: true });
    expect(pickBackend(view({ a: 32 }).v, plan, 0, false, 0)).toEqual({ ok: true, cursor: 1, delayMs: 0 });
    // Never for a fallback model's backend: a fallback stays a fallback.
    const withFallback = [...plan.slice(0, 1), { backendId: "b", alias: "chat-small" }];
    expect(pickBackend(view({}, {}, {}, { a: 5 }).v, withFallback, 0, false, 0)).toMatchObject({ cursor: 0 });
  });

  it("gives a half-open backend of the requested model its probe, though a healthy one comes first; once, and never for a fallback model", () => {
    const { v, breakers } = view();
    breakers.get("b")!.onFailure(0);
    // Cooled down: half-open, and the first fresh request probes it rather than going to a.
    const pick = pickBackend(v, plan, 0, false, 1_000);
    expect(pick).toEqual({ ok: true, cursor: 1, delayMs: 0 });
    breakers.get("b")!.onAttempt(1_000);
    // Its probe is out: the next request goes to a as before.
    expect(pickBackend(v, plan, 0, false, 1_001)).toEqual({ ok: true, cursor: 0, delayMs: 0 });
    // A half-open backend of a fallback model waits for that model's requests.
    const { v: v2, breakers: b2 } = view();
    b2.get("c")!.onFailure(0);
    const withFallback = [...plan.slice(0, 2), { backendId: "c", alias: "chat-small" }];
    expect(pickBackend(v2, withFallback, 0, false, 1_000)).toEqual({ ok: true, cursor: 0, delayMs: 0 });
  });

  it("on a retry prefers another region, then the same region, then what already failed", () => {
    const { v } = view();
    expect(pickBackend(v, plan, 1, false, 0, { region: "us-east", failed: ["a"] })).toMatchObject({ cursor: 1 });
    expect(pickBackend(v, plan, 2, false, 0, { region: "eu-west", failed: ["b"] })).toMatchObject({ cursor: 2 });
    expect(pickBackend(v, plan, 0, false, 0, { region: "us-east", failed: ["a", "b", "c"] })).toMatchObject({ cursor: 0 });
  });

  it("waits out a Retry-After only when nothing else can take it", () => {
    const { v } = view({ b: 32, c: 32 }, { a: 500 });
    expect(pickBackend(v, plan, 0, false, 100)).toEqual({ ok: true, cursor: 0, delayMs: 400 });
  });

  it("says why there is no backend: capacity, open circuits (and for how long), or none that can resume", () => {
    expect(pickBackend(view({ a: 32, b: 32, c: 32 }).v, plan, 0, false, 0)).toEqual({ ok: false, reason: "capacity" });
    const { v, breakers } = view();
    for (const b of breakers.values()) b.onFailure(0);
    expect(pickBackend(v, plan, 0, false, 10)).toEqual({ ok: false, reason: "breaker", retryAfterMs: 990 });
    expect(breakersOpenFor(v, plan, 10)).toBe(990);
    expect(pickBackend(view().v, plan, 0, true, 0)).toEqual({ ok: false, reason: "none" });
  });
});
