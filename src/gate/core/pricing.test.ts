import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { costOf, tokenPrice, worstCost } from "./pricing";

describe("pricing", () => {
  it("turns a price per million tokens into a price per token", () => {
    const p = tokenPrice({ inputPerMTok: 3, outputPerMTok: 15 })!;
    expect(costOf(p, { input: 1_000_000, output: 100_000, cachedInput: 0, estimated: false })).toBeCloseTo(3 + 1.5, 10);
  });

  it("prices cached prompt tokens at the cached price, or the input price when none is set", () => {
    const cached = tokenPrice({ inputPerMTok: 2, outputPerMTok: 8, cachedInputPerMTok: 0.5 })!;
    expect(costOf(cached, { input: 1_000_000, output: 0, cachedInput: 600_000, estimated: false })).toBeCloseTo(0.8 + 0.3, 10);
    const plain = tokenPrice({ inputPerMTok: 2, outputPerMTok: 8 })!;
    expect(costOf(plain, { input: 1_000_000, output: 0, cachedInput: 600_000, estimated: false })).toBeCloseTo(2, 10);
  });

  it("turns a GPU-hour into a per-token price from the measured throughput", () => {
    // $3.60 an hour at 1,000 output tokens a second: 3.6M tokens an hour, $1 per million.
    const p = tokenPrice({ gpuHour: { usd: 3.6, outputTokensPerSecond: 1000 } })!;
    expect(p.output * 1e6).toBeCloseTo(1, 10);
    expect(p.input).toBe(0);
    const withPrefill = tokenPrice({ gpuHour: { usd: 3.6, outputTokensPerSecond: 1000, inputTokensPerSecond: 10_000 } })!;
    expect(withPrefill.input * 1e6).toBeCloseTo(0.1, 10);
  });

  it("costs nothing on a backend without a price", () => {
    expect(tokenPrice(undefined)).toBeNull();
    expect(costOf(null, { input: 10, output: 10, cachedInput: 0, estimated: false })).toBe(0);
  });

  it("charges the dearest backend for the worst case", () => {
    const cheap = tokenPrice({ inputPerMTok: 1, outputPerMTok: 1 });
    const dear = tokenPrice({ inputPerMTok: 1, outputPerMTok: 10 });
    expect(worstCost([cheap, null, dear], 1000, 100)).toBeCloseTo((1000 * 1 + 100 * 10) / 1e6, 12);
  });

  it("is additive and never negative (property)", () => {
    const usage = fc.record({ input: fc.nat(1e6), output: fc.nat(1e6), cachedInput: fc.nat(1e6), estimated: fc.boolean() });
    const price = fc.record({
      inputPerMTok: fc.double({ min: 0, max: 100, noNaN: true }),
      outputPerMTok: fc.double({ min: 0, max: 100, noNaN: true }),
    });
    fc.assert(
      fc.property(price, usage, usage, (pr, a, b) => {
        const p = tokenPrice(pr);
        const sum = { input: a.input + b.input, output: a.output + b.output, cachedInput: 0, estimated: false };
        const split = costOf(p, { ...a, cachedInput: 0 }) + costOf(p, { ...b, cachedInput: 0 });
        expect(costOf(p, a)).toBeGreaterThanOrEqual(0);
        expect(costOf(p, sum)).toBeCloseTo(split, 6);
      }),
    );
  });
});
