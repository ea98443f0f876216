import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BudgetBook, type BudgetScope, type BudgetSpent, periodOf } from "./spend-budget";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 7, 12);
const usd = (limit: number, extra: Partial<BudgetScope["rule"]> = {}): BudgetScope => ({
  id: "tenant/daily",
  rule: { name: "daily", period: "day", unit: "usd", limit, ...extra },
});

function book() {
  const saved = new Map<string, BudgetSpent>();
  return { saved, book: new BudgetBook([], (id, s) => saved.set(id, { ...s })) };
}

describe("BudgetBook", () => {
  it("refuses a charge that would pass the limit with what is in flight, naming the budget and its reset", () => {
    const { book: b } = book();
    const scope = usd(1);
    expect(b.charge("a", [scope], { usd: 0.6, tokens: 0 }, T0)).toEqual({ ok: true });
    const refused = b.charge("b", [scope], { usd: 0.6, tokens: 0 }, T0);
    expect(refused).toEqual({ ok: false, scope, resetsAt: Date.UTC(2026, 11, 8) });
    // Settled below the charge: room again.
    b.settle("a", { usd: 0.1, tokens: 0 }, T0);
    expect(b.charge("b", [scope], { usd: 0.6, tokens: 0 }, T0)).toEqual({ ok: true });
    expect(b.status(scope, T0)).toMatchObject({ spent: 0.1, held: 0.6 });
  });

  it("refuses even a free request once the budget is spent, and starts from 0 the next period", () => {
    const { book: b } = book();
    const scope = usd(1);
    b.charge("a", [scope], { usd: 0.5, tokens: 0 }, T0);
    b.settle("a", { usd: 1.2, tokens: 0 }, T0);
    expect(b.charge("free", [scope], { usd: 0, tokens: 0 }, T0).ok).toBe(false);
    expect(b.charge("free", [scope], { usd: 0, tokens: 0 }, T0 + DAY).ok).toBe(true);
  });

  it("counts tokens for a token budget, and a month from the first of the month", () => {
    const { book: b } = book();
    const scope: BudgetScope = { id: "key/k/m", rule: { name: "m", period: "month", unit: "tokens", limit: 100 } };
    expect(b.charge("a", [scope], { usd: 99, tokens: 100 }, T0).ok).toBe(true);
    expect(b.charge("b", [scope], { usd: 0, tokens: 1 }, T0)).toMatchObject({ ok: false, resetsAt: Date.UTC(2027, 0, 1) });
    expect(periodOf("month", T0).start).toBe(Date.UTC(2026, 11, 1));
  });

  it("says which budgets a settle moved past their soft threshold, once", () => {
    const { book: b, saved } = book();
    const scope = usd(10, { softAt: 0.5 });
    b.charge("a", [scope], { usd: 1, tokens: 0 }, T0);
    expect(b.settle("a", { usd: 6, tokens: 0 }, T0)).toEqual([scope]);
    expect(b.pastSoft(scope, T0)).toBe(true);
    b.charge("b", [scope], { usd: 1, tokens: 0 }, T0);
    expect(b.settle("b", { usd: 1, tokens: 0 }, T0)).toEqual([]);
    expect(saved.get("tenant/daily")).toMatchObject({ usd: 7, periodStart: Date.UTC(2026, 11, 7) });
  });

  it("drops a released charge, and settles a hold once", () => {
    const { book: b } = book();
    const scope = usd(1);
    b.charge("a", [scope], { usd: 1, tokens: 0 }, T0);
    b.release("a");
    expect(b.status(scope, T0).held).toBe(0);
    b.charge("b", [scope], { usd: 0.5, tokens: 0 }, T0);
    b.settle("b", { usd: 0.5, tokens: 0 }, T0);
    b.settle("b", { usd: 0.5, tokens: 0 }, T0);
    expect(b.status(scope, T0).spent).toBe(0.5);
  });

  it("restores what was saved", () => {
    const b = new BudgetBook([["tenant/daily", { periodStart: periodOf("day", T0).start, usd: 0.9, tokens: 0 }]], () => {});
    expect(b.charge("a", [usd(1)], { usd: 0.2, tokens: 0 }, T0).ok).toBe(false);
  });

  it("never lets spend pass the limit while every request costs at most its charge (property)", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("charge" as const), est: fc.double({ min: 0, max: 0.5, noNaN: true }) }),
      fc.record({ kind: fc.constant("settle" as const), share: fc.double({ min: 0, max: 1, noNaN: true }), pick: fc.nat() }),
      fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const { book: b } = book();
        const scope = usd(1);
        const open = new Map<string, number>();
        let next = 0;
        for (const o of ops) {
          if (o.kind === "charge") {
            const id = `r${next++}`;
            if (b.charge(id, [scope], { usd: o.est, tokens: 0 }, T0).ok) open.set(id, o.est);
          } else if (open.size > 0) {
            const [id, est] = [...open][o.pick % open.size]!;
            open.delete(id);
            if (o.kind === "settle") b.settle(id, { usd: est * o.share, tokens: 0 }, T0);
            else b.release(id);
          }
          const s = b.status(scope, T0);
          expect(s.spent + s.held).toBeLessThanOrEqual(1 + 1e-9);
        }
      }),
    );
  });
});
