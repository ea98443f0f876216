// Sharding a tenant's gate. One Durable Object serves on the order of 500-1,000 calls a second, and
// a request makes three or more (admit, first token, settle, checkpoints), so a tenant whose load
// outgrows one object spreads it over `limits.shards` gates, each with its share of the limits. A
// request with a journal key (Idempotency-Key, semantic key) always goes to the shard its key
// hashes to, where its twins, replays and stored answer are; any other request goes to a random
// shard. No platform imports.
import type { TenantConfig } from "../config/schema";

/** The Durable Object name of a tenant's shard. Shard 0 keeps the tenant's own name. */
export function gateName(tenant: string, shard: number): string {
  return shard === 0 ? tenant : `${tenant}:shard-${shard}`;
}

/** The shard of a journal key (stable), or a random one for a request without a key. */
export function shardFor(key: string | undefined, shards: number, random: () => number = Math.random): number {
  if (shards <= 1) return 0;
  if (key === undefined) return Math.min(shards - 1, Math.floor(random() * shards));
  return fnv1a(key) % shards;
}

/** FNV-1a (32 bits, unsigned): cheap, and spreads similar strings ("idem:job-1", "idem:job-2") evenly. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

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
    backends: config.backends.map((b, i) => ({ ...b, maxConcurrency: rotated(b.maxConcurrency, i) })),
    limits: {
      ...config.limits,
      maxConcurrency: rotated(config.limits.maxConcurrency, 0),
      maxQueue: rotated(config.limits.maxQueue, 1),
      // A left-over shard's share is 0, read as no limit: it gets no new requests to limit.
      requestsPerMinute: config.limits.requestsPerMinute && rotated(config.limits.requestsPerMinute, 3),
      tokensPerMinute: config.limits.tokensPerMinute && rotated(config.limits.tokensPerMinute, 4),
    },
    retry: { ...config.retry, budgetMinRetries: rotated(config.retry.budgetMinRetries, 2) },
  };
}
