import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { affinityScore } from "./affinity";

const rank = (key: string, backends: string[]) => [...backends].sort((a, b) => affinityScore(key, b) - affinityScore(key, a));

describe("affinityScore (rendezvous hashing)", () => {
  it("spreads keys over backends about evenly", () => {
    const backends = ["use1-a", "use1-b", "use1-c", "use1-d"];
    const counts = new Map(backends.map((b) => [b, 0]));
    for (let i = 0; i < 4_000; i++) {
      const first = rank(`conv-${i}`, backends)[0]!;
      counts.set(first, counts.get(first)! + 1);
    }
    for (const n of counts.values()) expect(n).toBeGreaterThan(800);
  });

  it("property: removing a backend moves only the keys that preferred it, and keeps the others' order", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 2, maxLength: 8 }),
        fc.nat(),
        (key, backends, pick) => {
          const gone = backends[pick % backends.length]!;
          const before = rank(key, backends);
          const after = rank(
            key,
            backends.filter((b) => b !== gone),
          );
          expect(after).toEqual(before.filter((b) => b !== gone));
        },
      ),
    );
  });
});
