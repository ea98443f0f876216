// The spend API's answer (GET /admin/tenants/{t}/spend): the ledger rows of a tenant's gates added
// up by the dimensions asked for, served and wasted apart, wasted by cause.
import type { SpendCause, SpendEntry } from "../gate/core/spend-ledger";

export const SPEND_DIMENSIONS = ["day", "key", "model", "backend"] as const;
export type SpendDimension = (typeof SPEND_DIMENSIONS)[number];

type WastedCause = Exclude<SpendCause, "">;
const WASTED_CAUSES: readonly WastedCause[] = ["failed", "hedge", "cancelled", "regenerated", "restarted", "resumed"];

export interface SpendFigures {
  usd: number;
  served_usd: number;
  wasted_usd: number;
  /** Wasted spend by cause (README, "Spend and budgets"). */
  wasted_by_cause: Record<WastedCause, number>;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  attempts: number;
  /** Attempts whose usage sluice estimated (the backend reported none). */
  estimated_attempts: number;
}

export type SpendGroup = Partial<Record<SpendDimension, string>> & SpendFigures;

const empty = (): SpendFigures => ({
  usd: 0,
  served_usd: 0,
  wasted_usd: 0,
  wasted_by_cause: Object.fromEntries(WASTED_CAUSES.map((c) => [c, 0])) as Record<WastedCause, number>,
  input_tokens: 0,
  output_tokens: 0,
  cached_tokens: 0,
  attempts: 0,
  estimated_attempts: 0,
});

function add(f: SpendFigures, r: SpendEntry): void {
  f.usd += r.usd;
  if (r.kind === "served") f.served_usd += r.usd;
  else {
    f.wasted_usd += r.usd;
    if (r.cause !== "") f.wasted_by_cause[r.cause] += r.usd;
  }
  f.input_tokens += r.inputTokens;
  f.output_tokens += r.outputTokens;
  f.cached_tokens += r.cachedTokens;
  f.attempts += r.attempts;
  f.estimated_attempts += r.estimated;
}

const dimensionOf = (r: SpendEntry, d: SpendDimension): string =>
  d === "day" ? r.day : d === "key" ? r.keyId : d === "model" ? r.alias : r.backendId;

/** The rows added up per combination of `groupBy`'s values (sorted by them), and over all. */
export function spendReport(rows: readonly SpendEntry[], groupBy: readonly SpendDimension[]): { total: SpendFigures; data: SpendGroup[] } {
  const total = empty();
  const groups = new Map<string, SpendGroup>();
  for (const r of rows) {
    add(total, r);
    const values = groupBy.map((d) => dimensionOf(r, d));
    const id = JSON.stringify(values);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { ...Object.fromEntries(groupBy.map((d, i) => [d, values[i]])), ...empty() }));
    add(g, r);
  }
  const data = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
  return { total, data };
}

/** A YYYY-MM-DD day, checked to be a real date. */
export function validDay(day: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(day) && !Number.isNaN(Date.parse(day)) && new Date(Date.parse(day)).toISOString().startsWith(day);
}
