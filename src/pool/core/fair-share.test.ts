import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { type Claim, fairShares } from "./fair-share";

const claimsArb = fc
  .uniqueArray(
    fc.record({
      key: fc.string({ minLength: 1, maxLength: 4 }),
      weight: fc.integer({ min: 1, max: 10 }),
      want: fc.integer({ min: 0, max: 80 }),
      min: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
      max: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
    }),
    { selector: (c) => c.key, maxLength: 8 },
  )
  .map((cs) => cs.map((c): Claim => (c.max !== undefined && c.min !== undefined && c.max < c.min ? { ...c, max: c.min } : c)));

const capOf = (c: Claim) => Math.min(c.want, c.max ?? Infinity);

describe("fairShares", () => {
  it("divides a saturated pool by weight: 3:1 of 8 slots is 6 and 2", () => {
    const shares = fairShares(8, [
      { key: "a", weight: 3, want: 100 },
      { key: "b", weight: 1, want: 100 },
    ]);
    expect(Object.fromEntries(shares)).toEqual({ a: 6, b: 2 });
  });

  it("gives what one claimant leaves to the others (work-conserving)", () => {
    const shares = fairShares(16, [
      { key: "quiet", weight: 1, want: 3 },
      { key: "noisy", weight: 1, want: 100 },
    ]);
    expect(Object.fromEntries(shares)).toEqual({ quiet: 3, noisy: 13 });
    expect(Object.fromEntries(fairShares(16, [{ key: "alone", weight: 1, want: 100 }]))).toEqual({ alone: 16 });
  });

  it("honours floors before weights, and caps however idle the pool", () => {
    const shares = fairShares(10, [
      { key: "a", weight: 9, want: 100 },
      { key: "b", weight: 1, want: 100, min: 4 },
      { key: "c", weight: 1, want: 100, max: 1 },
    ]);
    expect(shares.get("b")).toBeGreaterThanOrEqual(4);
    expect(shares.get("c")).toBe(1);
    expect(shares.get("a")! + shares.get("b")! + shares.get("c")!).toBe(10);
  });

  it("property: adds up to what the pool can give, within each claim's bounds, fair to within a slot", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), claimsArb, (capacity, claims) => {
        const shares = fairShares(capacity, claims);
        const total = [...shares.values()].reduce((a, b) => a + b, 0);
        const takeable = claims.reduce((sum, c) => sum + capOf(c), 0);
        expect(total).toBe(Math.min(capacity, takeable));
        const floorsFit = claims.reduce((sum, c) => sum + Math.min(c.min ?? 0, capOf(c)), 0) <= capacity;
        for (const c of claims) {
          const s = shares.get(c.key)!;
          expect(Number.isInteger(s)).toBe(true);
          expect(s).toBeGreaterThanOrEqual(0);
          expect(s).toBeLessThanOrEqual(capOf(c));
          if (floorsFit) expect(s).toBeGreaterThanOrEqual(Math.min(c.min ?? 0, capOf(c)));
        }
        if (!floorsFit) return;
        // Envy-free to within a slot: one short of what it can take is never two slots of weighted share behind another above its floor.
        for (const i of claims)
          for (const j of claims) {
            const si = shares.get(i.key)!;
            const sj = shares.get(j.key)!;
            if (si < capOf(i) && sj > Math.min(j.min ?? 0, capOf(j)))
              expect((sj - 1) / j.weight).toBeLessThanOrEqual((si + 1) / i.weight + 1e-9);
          }
      }),
    );
  });
});
