import { describe, expect, it } from "vitest";
import { spendReport, validDay } from "./spend-report";
import type { SpendEntry } from "../gate/core/spend-ledger";

const row = (extra: Partial<SpendEntry>): SpendEntry => ({
  day: "2026-12-07",
  keyId: "k1",
  alias: "chat",
  backendId: "a",
  kind: "served",
  cause: "",
  usd: 1,
  inputTokens: 10,
  outputTokens: 5,
  cachedTokens: 0,
  attempts: 1,
  estimated: 0,
  ...extra,
});

describe("spendReport", () => {
  it("adds rows up by the dimensions asked for, served and wasted apart, wasted by cause", () => {
    const rows = [
      row({}),
      row({ backendId: "b", usd: 2 }),
      row({ kind: "wasted", cause: "failed", usd: 0.5, estimated: 1 }),
      row({ day: "2026-12-06", keyId: "k2", kind: "wasted", cause: "hedge", usd: 0.25 }),
    ];
    const byKey = spendReport(rows, ["key"]);
    expect(byKey.total).toMatchObject({ usd: 3.75, served_usd: 3, wasted_usd: 0.75, attempts: 4, estimated_attempts: 1 });
    expect(byKey.total.wasted_by_cause).toMatchObject({ failed: 0.5, hedge: 0.25, regenerated: 0 });
    expect(byKey.data.map((g) => [g.key, g.usd])).toEqual([
      ["k1", 3.5],
      ["k2", 0.25],
    ]);
    const byDayBackend = spendReport(rows, ["day", "backend"]);
    expect(byDayBackend.data.map((g) => [g.day, g.backend, g.usd])).toEqual([
      ["2026-12-06", "a", 0.25],
      ["2026-12-07", "a", 1.5],
      ["2026-12-07", "b", 2],
    ]);
    expect(spendReport(rows, []).data).toHaveLength(1);
  });

  it("accepts real days only", () => {
    expect(validDay("2026-12-07")).toBe(true);
    expect(validDay("2026-02-30")).toBe(false);
    expect(validDay("2026-1-07")).toBe(false);
  });
});
