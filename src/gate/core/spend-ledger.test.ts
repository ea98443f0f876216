import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { attemptSpend, type AttemptContext } from "./spend-ledger";
import { tokenPrice } from "./pricing";
import type { AttemptReport } from "./protocol";

// $1 per million input tokens, $10 per million output tokens on every backend.
const price = tokenPrice({ inputPerMTok: 1, outputPerMTok: 10 });
const ctx: AttemptContext = { day: "2026-12-07", keyId: "k", aliasOf: () => "chat", priceOf: () => price };
const usage = (input: number, output: number, estimated = false) => ({ input, output, cachedInput: 0, estimated });
const report = (extra: Partial<AttemptReport>): AttemptReport => ({
  backendId: "a",
  outcome: "success",
  durationMs: 1,
  chunks: 1,
  ...extra,
});

describe("attemptSpend", () => {
  it("counts an answer's attempt as served, at its own usage", () => {
    const [e, ...rest] = attemptSpend(ctx, report({ chunks: 20, usage: usage(1000, 20) }));
    expect(rest).toEqual([]);
    expect(e).toMatchObject({ kind: "served", cause: "", inputTokens: 1000, outputTokens: 20, attempts: 1, estimated: 0 });
    expect(e!.usd).toBeCloseTo(1000e-6 + 200e-6, 12);
  });

  it("counts an attempt whose output reached nobody as wasted, by why", () => {
    const failed = attemptSpend(ctx, report({ outcome: "failure", chunks: 0, usage: usage(1000, 0, true) }));
    expect(failed).toMatchObject([{ kind: "wasted", cause: "failed", inputTokens: 1000, estimated: 1 }]);
    const lost = attemptSpend(ctx, report({ outcome: "cancelled", errorCode: "hedge_lost", chunks: 0, usage: usage(500, 0) }));
    expect(lost).toMatchObject([{ kind: "wasted", cause: "hedge" }]);
    const left = attemptSpend(ctx, report({ outcome: "cancelled", errorCode: "client_disconnected", chunks: 0, usage: usage(500, 0) }));
    expect(left).toMatchObject([{ kind: "wasted", cause: "cancelled" }]);
  });

  it("costs nothing for an attempt the backend never took", () => {
    expect(attemptSpend(ctx, report({ outcome: "failure", chunks: 0 }))).toEqual([]);
  });

  it("moves a regenerated prefix's output to wasted", () => {
    const entries = attemptSpend(
      ctx,
      report({ chunks: 10, usage: usage(100, 30), waste: [{ backendId: "a", cause: "regenerated", tokens: 20 }] }),
    );
    expect(entries).toMatchObject([
      { kind: "served", outputTokens: 10, attempts: 1 },
      { kind: "wasted", cause: "regenerated", outputTokens: 20, attempts: 0 },
    ]);
    expect(entries[1]!.usd).toBeCloseTo(200e-6, 12);
  });

  it("counts the answer so far a continuation read again as wasted, the rest of its prompt as served", () => {
    const entries = attemptSpend(ctx, report({ chunks: 5, usage: { ...usage(1000, 5), resumed: 300 } }));
    expect(entries).toMatchObject([
      { kind: "served", inputTokens: 700, outputTokens: 5 },
      { kind: "wasted", cause: "resumed", inputTokens: 300, outputTokens: 0, attempts: 0 },
    ]);
    expect(entries[1]!.usd).toBeCloseTo(300e-6, 12);
  });

  it("moves a restarted answer's output from served to wasted on the backend that generated it", () => {
    const entries = attemptSpend(
      ctx,
      report({ backendId: "b", chunks: 5, usage: usage(100, 5), waste: [{ backendId: "a", cause: "restarted", tokens: 7 }] }),
    );
    expect(entries.slice(1)).toMatchObject([
      { backendId: "a", kind: "served", outputTokens: -7, attempts: 0 },
      { backendId: "a", kind: "wasted", cause: "restarted", outputTokens: 7, attempts: 0 },
    ]);
    expect(entries[1]!.usd).toBeCloseTo(-70e-6, 12);
  });

  it("always adds up to the attempt's whole cost, served plus wasted (property)", () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.nat(10_000), fc.nat(10_000), fc.nat(50), fc.nat(20_000), (input, output, skipped, chunks, resumed) => {
        const r = report({
          chunks,
          usage: { ...usage(input, output), resumed },
          waste: [{ backendId: "a", cause: "regenerated", tokens: skipped }],
        });
        const sum = attemptSpend(ctx, r).reduce((n, e) => n + e.usd, 0);
        expect(sum).toBeCloseTo(input * 1e-6 + output * 10e-6, 9);
      }),
    );
  });
});
