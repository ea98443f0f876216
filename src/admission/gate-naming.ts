// Which of a tenant's gates a request goes to. A tenant whose load outgrows one Durable Object is
// spread over `limits.shards` gates (gate/core/shard-share.ts gives each its share of the limits). A
// request with a journal key (Idempotency-Key, semantic key) always goes to the shard its key hashes
// to, where its twins, replays and stored answer are; any other request goes to a random shard.
import { fnv1a } from "../hash";

export { gateName } from "../gate/gate-name";

/** The shard of a journal key (stable), or a random one for a request without a key. */
export function shardFor(key: string | undefined, shards: number, random: () => number = Math.random): number {
  if (shards <= 1) return 0;
  if (key === undefined) return Math.min(shards - 1, Math.floor(random() * shards));
  return fnv1a(key) % shards;
}
