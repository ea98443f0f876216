// A shard's share of its tenant's limits. One Durable Object serves on the order of 500-1,000 calls
// a second, so a tenant whose load outgrows one object spreads it over `limits.shards` gates (see
// admission/gate-naming.ts for which request goes where), each enforcing its share of the limits.
import type { TenantConfig } from "../../config/schema";

/**
 * Shard `shard`'s part of `total` when it is split `shards` ways: the shares add up to `total`
 * exactly. A shard beyond the count (left over after the count was lowered) gets nothing.
 */
export function shareOf(total: number, shard: number, shards: number): number {
  if (shard >= shards) return 0;
  return Math.floor(total / shards) + (shard < total % shards ? 1 : 0);
}

/**
 * The config one shard enforces: its share of the tenant's concurrency, queue, rate limits, every
 * backend's slots and the retry budget's floor. The remainders go to different shards for different
 * backends, so no shard is favoured everywhere.
 */
export function shardConfig(config: TenantConfig, shard: number): TenantConfig {
  const shards = config.limits.shards;
  if (shards <= 1 && shard === 0) return config;
  // A shard beyond the count keeps its index, and shareOf gives it nothing.
  const rotated = (total: number, offset: number) => shareOf(total, shard < shards ? (shard + offset) % shards : shard, shards);
  return {
    ...config,
    // A fleet backend's slots are the pool's to share (credits): each shard asks for its own.
    backends: config.backends.map((b, i) => (b.pool === undefined ? { ...b, maxConcurrency: rotated(b.maxConcurrency, i) } : b)),
    limits: {
      ...config.limits,
      maxConcurrency: rotated(config.limits.maxConcurrency, 0),
      maxQueue: rotated(config.limits.maxQueue, 1),
      // A left-over shard's share is 0, read as no limit: it gets no new requests to limit.
      requestsPerMinute: config.limits.requestsPerMinute && rotated(config.limits.requestsPerMinute, 3),
      tokensPerMinute: config.limits.tokensPerMinute && rotated(config.limits.tokensPerMinute, 4),
      background: config.limits.background === undefined ? undefined : rotated(config.limits.background, 5),
    },
    retry: { ...config.retry, budgetMinRetries: rotated(config.retry.budgetMinRetries, 2) },
  };
}
