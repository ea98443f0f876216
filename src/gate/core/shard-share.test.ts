// Splitting a tenant's limits over several gates: shares that add up exactly.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { shardConfig, shareOf } from "./shard-share";
import { TenantConfigSchema } from "../../config/schema";

const config = (shards: number, limits: Record<string, number> = {}) =>
  TenantConfigSchema.parse({
    backends: [
      { id: "a", region: "us-east", url: "http://a.test/v1", model: "m", maxConcurrency: 7 },
      { id: "b", region: "eu-west", url: "http://b.test/v1", model: "m", maxConcurrency: 5 },
    ],
    models: { chat: { route: ["a", "b"] } },
    limits: { maxConcurrency: 10, maxQueue: 9, shards, ...limits },
    retry: { budgetMinRetries: 10 },
  });

describe("shards", () => {
  it("splits a total into shares that add up to it, none more than one apart", () => {
    fc.assert(
      fc.property(fc.nat(100_000), fc.integer({ min: 1, max: 32 }), (total, shards) => {
        const shares = Array.from({ length: shards }, (_, i) => shareOf(total, i, shards));
        expect(shares.reduce((a, b) => a + b, 0)).toBe(total);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
        expect(shareOf(total, shards, shards)).toBe(0);
      }),
    );
  });

  it("gives each shard its share of the tenant's and every backend's limits", () => {
    expect(shardConfig(config(1), 0)).toEqual(config(1));
    const tenant = config(3);
    const parts = [0, 1, 2].map((i) => shardConfig(tenant, i));
    const total = (pick: (c: typeof tenant) => number) => parts.reduce((n, c) => n + pick(c), 0);
    expect(total((c) => c.limits.maxConcurrency)).toBe(10);
    expect(total((c) => c.limits.maxQueue)).toBe(9);
    expect(total((c) => c.backends[0]!.maxConcurrency)).toBe(7);
    expect(total((c) => c.backends[1]!.maxConcurrency)).toBe(5);
    expect(total((c) => c.retry.budgetMinRetries)).toBe(10);
    // The remainders of different limits land on different shards.
    expect(parts.map((c) => c.backends[0]!.maxConcurrency)).toEqual([3, 2, 2]);
    expect(parts.map((c) => c.backends[1]!.maxConcurrency)).toEqual([2, 1, 2]);
    // A gate left over after the count was lowered takes nothing new.
    expect(shardConfig(tenant, 3).limits.maxConcurrency).toBe(0);
    // Rate limits are split the same way; a tenant without them has none in any shard.
    expect(parts.every((c) => c.limits.requestsPerMinute === undefined && c.limits.tokensPerMinute === undefined)).toBe(true);
    const limited = [0, 1, 2].map((i) => shardConfig(config(3, { requestsPerMinute: 100, tokensPerMinute: 50_000 }), i));
    expect(limited.map((c) => c.limits.requestsPerMinute)).toEqual([34, 33, 33]);
    expect(limited.reduce((n, c) => n + c.limits.tokensPerMinute!, 0)).toBe(50_000);
  });

  it("refuses rate limits smaller than the shard count, which would leave a shard none", () => {
    const parsed = TenantConfigSchema.safeParse({
      ...config(1),
      limits: { ...config(1).limits, shards: 4, requestsPerMinute: 3, tokensPerMinute: 2 },
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.map((i) => i.path.join("."))).toEqual(["limits.requestsPerMinute", "limits.tokensPerMinute"]);
  });

  it("refuses a config that leaves a shard without a slot", () => {
    const result = TenantConfigSchema.safeParse({ ...config(1), limits: { maxConcurrency: 10, shards: 6 } });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.path.join("."))).toEqual(["backends.1.maxConcurrency"]);
  });
});
