// Budgets that hold under concurrency. A request is charged at admission what it could cost at
// most (its prompt and max output at the dearest backend of its route) and settled to what it did
// cost when it ends: a budget is refused once its spend plus what requests in flight may still
// spend would pass it, so concurrent requests cannot overshoot it together. What can pass a limit
// is only what a request spends beyond its charge (docs: README, "Spend and budgets").
import type { BudgetRule } from "../../config/schema";

/** A budget of the tenant, or of one API key: `id` is "tenant/<name>" or "key/<key id>/<name>". */
export interface BudgetScope {
  id: string;
  rule: BudgetRule;
}

/** Spend of one budget in its current period, settled requests only. */
export interface BudgetSpent {
  periodStart: number;
  usd: number;
  tokens: number;
}

export interface Amount {
  usd: number;
  tokens: number;
}

export type ChargeResult = { ok: true } | { ok: false; scope: BudgetScope; resetsAt: number };

export interface BudgetStatus {
  id: string;
  rule: BudgetRule;
  /** Settled spend this period, in the budget's unit. */
  spent: number;
  /** Charged to requests in flight, in the budget's unit. */
  held: number;
  periodStart: number;
  resetsAt: number;
}

/** The UTC period of `now` a budget counts in: [start, end). */
export function periodOf(period: BudgetRule["period"], now: number): { start: number; end: number } {
  const d = new Date(now);
  if (period === "day") {
    const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    return { start, end: start + 86_400_000 };
  }
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

/** Budgets remembered for alerts: a tenant's 8 and 8 for each of its keys, with room to spare. */
const MAX_SEEN = 2_000;

/** The share of a limit that float rounding may be off by (a billionth). */
const FLOAT_SLACK = 1e-9;

const inUnit = (rule: BudgetRule, a: Amount): number => (rule.unit === "usd" ? a.usd : a.tokens);

interface Hold {
  scopes: BudgetScope[];
  charged: Amount;
}

export class BudgetBook {
  private readonly spent = new Map<string, BudgetSpent>();
  /** What requests in flight were charged, per budget id. */
  private readonly held = new Map<string, Amount & { count: number }>();
  /** Charges of requests in flight, by hold id (the request id). */
  private readonly holds = new Map<string, Hold>();
  /** The budgets charged lately (an API key's come with its requests): what alerts look at. */
  private readonly seen = new Map<string, BudgetScope>();

  constructor(
    saved: Iterable<readonly [string, BudgetSpent]>,
    /** A budget's spend changed: the host stores it. */
    private readonly save: (id: string, spent: BudgetSpent) => void,
  ) {
    for (const [id, s] of saved) this.spent.set(id, s);
  }

  /**
   * Charges `estimate` to every budget in `scopes` under `holdId`, or refuses it when one of them
   * would pass its limit (the first such is named). A hold id already charged is not charged again.
   */
  charge(holdId: string, scopes: BudgetScope[], estimate: Amount, now: number): ChargeResult {
    if (this.holds.has(holdId) || scopes.length === 0) return { ok: true };
    for (const scope of scopes) {
      const used = this.used(scope, now);
      const amount = inUnit(scope.rule, estimate);
      // Sums of prices are floats: a charge that fits exactly must not be refused by a rounding.
      const slack = FLOAT_SLACK * scope.rule.limit;
      if (used >= scope.rule.limit - slack || used + amount > scope.rule.limit + slack)
        return { ok: false, scope, resetsAt: periodOf(scope.rule.period, now).end };
    }
    for (const scope of scopes) {
      this.addHeld(scope.id, estimate, 1);
      this.seen.delete(scope.id);
      this.seen.set(scope.id, scope);
      if (this.seen.size > MAX_SEEN) this.seen.delete(this.seen.keys().next().value!);
    }
    this.holds.set(holdId, { scopes, charged: estimate });
    return { ok: true };
  }

  /**
   * The request under `holdId` ended having cost `actual` ("charged": what it was charged, when its
   * cost is unknown): its charge becomes that. Returns the budgets it moved past their soft threshold.
   */
  settle(holdId: string, actual: Amount | "charged", now: number): BudgetScope[] {
    const hold = this.holds.get(holdId);
    if (!hold) return [];
    if (actual === "charged") actual = hold.charged;
    this.holds.delete(holdId);
    const crossed: BudgetScope[] = [];
    for (const scope of hold.scopes) {
      this.addHeld(scope.id, hold.charged, -1);
      const before = this.used(scope, now);
      const spent = this.current(scope, now);
      spent.usd += actual.usd;
      spent.tokens += actual.tokens;
      this.save(scope.id, spent);
      const soft = scope.rule.softAt === undefined ? undefined : scope.rule.softAt * scope.rule.limit;
      if (soft !== undefined && before < soft && this.used(scope, now) >= soft) crossed.push(scope);
    }
    return crossed;
  }

  /**
   * Spend of a request that holds no charge here (its charge was lost with a restart of the gate):
   * added to `scopes` as it is.
   */
  record(scopes: BudgetScope[], actual: Amount, now: number): void {
    for (const scope of scopes) {
      const spent = this.current(scope, now);
      spent.usd += actual.usd;
      spent.tokens += actual.tokens;
      this.save(scope.id, spent);
    }
  }

  /** The request under `holdId` never ran (refused or cancelled after its charge): the charge is dropped. */
  release(holdId: string): void {
    const hold = this.holds.get(holdId);
    if (!hold) return;
    this.holds.delete(holdId);
    for (const scope of hold.scopes) this.addHeld(scope.id, hold.charged, -1);
  }

  /** Whether a charge is held under `holdId`. */
  holding(holdId: string): boolean {
    return this.holds.has(holdId);
  }

  /** Whether `scope` is at or past its soft threshold (spend and charges in flight). */
  pastSoft(scope: BudgetScope, now: number): boolean {
    return scope.rule.softAt !== undefined && this.used(scope, now) >= scope.rule.softAt * scope.rule.limit;
  }

  status(scope: BudgetScope, now: number): BudgetStatus {
    const { start, end } = periodOf(scope.rule.period, now);
    const held = this.held.get(scope.id);
    return {
      id: scope.id,
      rule: scope.rule,
      spent: inUnit(scope.rule, this.current(scope, now)),
      held: held ? inUnit(scope.rule, held) : 0,
      periodStart: start,
      resetsAt: end,
    };
  }

  /** The budgets charged lately, most recent last (at most MAX_SEEN). */
  charged(): BudgetScope[] {
    return [...this.seen.values()];
  }

  /** Settled spend plus charges in flight, in the budget's unit. */
  private used(scope: BudgetScope, now: number): number {
    const held = this.held.get(scope.id);
    return inUnit(scope.rule, this.current(scope, now)) + (held ? inUnit(scope.rule, held) : 0);
  }

  /** The budget's spend this period: a new period starts from 0. */
  private current(scope: BudgetScope, now: number): BudgetSpent {
    const start = periodOf(scope.rule.period, now).start;
    let spent = this.spent.get(scope.id);
    if (!spent || spent.periodStart !== start) this.spent.set(scope.id, (spent = { periodStart: start, usd: 0, tokens: 0 }));
    return spent;
  }

  private addHeld(id: string, amount: Amount, sign: 1 | -1): void {
    const h = this.held.get(id) ?? { usd: 0, tokens: 0, count: 0 };
    h.usd += sign * amount.usd;
    h.tokens += sign * amount.tokens;
    h.count += sign;
    // The last charge gone: exactly 0, whatever float sums left.
    if (h.count <= 0) this.held.delete(id);
    else this.held.set(id, h);
  }
}
