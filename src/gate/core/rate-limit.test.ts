import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TenantRateLimit, TokenBucket } from "./rate-limit";

const MINUTE = 60_000;

describe("TokenBucket", () => {
  it("starts full, empties as it is charged, and refills at capacity per period, never above it", () => {
    const bucket = new TokenBucket(60, MINUTE, 0);
    expect(bucket.available(0)).toBe(60);
    bucket.charge(60, 0);
    expect(bucket.available(0)).toBe(0);
    expect(bucket.waitMs(1, 0)).toBe(1_000);
    expect(bucket.available(30_000)).toBe(30);
    expect(bucket.available(10 * MINUTE)).toBe(60);
  });

  it("goes into debt on a charge after the fact, and a cost above its capacity needs a full bucket", () => {
    const bucket = new TokenBucket(100, MINUTE, 0);
    bucket.charge(250, 0);
    expect(bucket.available(0)).toBe(-150);
    expect(bucket.waitMs(1, 0)).toBe(90_600); // 151 tokens at 100 a minute
    expect(bucket.waitMs(500, MINUTE * 3)).toBe(0);
    expect(new TokenBucket(100, MINUTE, 0).waitMs(500, 0)).toBe(0);
  });

  it("gives refunds back only up to its capacity", () => {
    const bucket = new TokenBucket(10, MINUTE, 0);
    bucket.charge(-50, 0);
    expect(bucket.available(0)).toBe(10);
  });
});

describe("TenantRateLimit", () => {
  it("admits up to requestsPerMinute at once, then at its pace, saying how long to wait", () => {
    const limit = new TenantRateLimit({ requestsPerMinute: 2 }, 0);
    expect(limit.admit(10, 0)).toEqual({ ok: true });
    expect(limit.admit(10, 0)).toEqual({ ok: true });
    expect(limit.admit(10, 0)).toEqual({ ok: false, limit: "requests", perMinute: 2, retryAfterMs: 30_000 });
    expect(limit.admit(10, 29_999).ok).toBe(false);
    expect(limit.admit(10, 30_000)).toEqual({ ok: true });
    expect(limit.usage(30_000)).toEqual({ requests: { perMinute: 2, available: 0 }, tokens: null });
  });

  it("charges the token estimate up front and settles it to what was used", () => {
    const limit = new TenantRateLimit({ tokensPerMinute: 1_000 }, 0);
    expect(limit.admit(600, 0)).toEqual({ ok: true });
    // 400 left; 600 more needs 200 tokens of refill at 1,000 a minute.
    expect(limit.admit(600, 0)).toEqual({ ok: false, limit: "tokens", perMinute: 1_000, retryAfterMs: 12_000 });
    limit.settle(600, 100, 0);
    expect(limit.admit(600, 0)).toEqual({ ok: true });
    expect(limit.usage(0).tokens).toEqual({ perMinute: 1_000, available: 300 });
  });

  it("charges what a request used beyond its estimate, and admits nothing until that debt is paid", () => {
    const limit = new TenantRateLimit({ tokensPerMinute: 1_000 }, 0);
    expect(limit.admit(50, 0).ok).toBe(true); // no max_tokens: the prompt only
    limit.settle(50, 1_550, 0);
    expect(limit.usage(0).tokens!.available).toBe(-550);
    expect(limit.admit(1, 0)).toEqual({ ok: false, limit: "tokens", perMinute: 1_000, retryAfterMs: 33_060 });
    expect(limit.admit(1, 33_059).ok).toBe(false);
    expect(limit.admit(1, 33_060).ok).toBe(true);
  });

  it("gives both charges back for a request that got no slot", () => {
    const limit = new TenantRateLimit({ requestsPerMinute: 1, tokensPerMinute: 100 }, 0);
    expect(limit.admit(100, 0).ok).toBe(true);
    limit.refund(100, 0);
    expect(limit.usage(0)).toEqual({ requests: { perMinute: 1, available: 1 }, tokens: { perMinute: 100, available: 100 } });
  });

  it("names the limit that keeps the request out longest, and charges neither when one refuses", () => {
    const limit = new TenantRateLimit({ requestsPerMinute: 60, tokensPerMinute: 100 }, 0);
    expect(limit.admit(100, 0).ok).toBe(true);
    expect(limit.admit(50, 0)).toEqual({ ok: false, limit: "tokens", perMinute: 100, retryAfterMs: 30_000 });
    expect(limit.usage(0).requests!.available).toBe(59);
  });

  it("never admits more than its capacity plus what refilled, over any stretch of time", () => {
    const perMinute = 100;
    fc.assert(
      fc.property(
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 5_000 }), cost: fc.integer({ min: 1, max: perMinute }) }), { maxLength: 200 }),
        (ops) => {
          const limit = new TenantRateLimit({ tokensPerMinute: perMinute }, 0);
          const admitted: Array<{ at: number; cost: number }> = [];
          let now = 0;
          for (const { dt, cost } of ops) {
            now += dt;
            if (limit.admit(cost, now).ok) admitted.push({ at: now, cost });
          }
          for (let i = 0; i < admitted.length; i++) {
            let sum = 0;
            for (let j = i; j < admitted.length; j++) {
              sum += admitted[j]!.cost;
              expect(sum).toBeLessThanOrEqual(perMinute + ((admitted[j]!.at - admitted[i]!.at) * perMinute) / MINUTE + 1e-9);
            }
          }
        },
      ),
    );
  });
});
