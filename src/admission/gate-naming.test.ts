// Which gate a request goes to: stable shards for keys, the tenant's own name for shard 0.
import { describe, expect, it } from "vitest";
import { gateName, shardFor } from "./gate-naming";

describe("gate naming", () => {
  it("keeps the tenant's own name for shard 0, so a tenant that never shards keeps its gate", () => {
    expect(gateName("acme", 0)).toBe("acme");
    expect(gateName("acme", 3)).toBe("acme:shard-3");
  });

  it("sends a key to the same shard every time, and spreads keys evenly", () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4_000; i++) {
      const shard = shardFor(`idem:job-${i}`, 4);
      expect(shardFor(`idem:job-${i}`, 4)).toBe(shard);
      counts[shard]!++;
    }
    for (const n of counts) expect(n).toBeGreaterThan(850);
    expect(shardFor("idem:x", 1)).toBe(0);
    expect(shardFor(undefined, 4, () => 0.999)).toBe(3);
    expect(shardFor(undefined, 4, () => 0)).toBe(0);
  });
});
