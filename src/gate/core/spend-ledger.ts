// What each attempt cost, split into the spend a client got an answer from ("served") and the spend
// no client got anything from ("wasted"), by cause. Every attempt report passes through here once
// (Attempts.judge); the entries it yields are added to the ledger's rows (one row per day, API key,
// model alias, backend, kind and cause: aggregates, never a row per request).
import { type AttemptUsage, type TokenPrice, costOf } from "./pricing";
import type { AttemptReport } from "./protocol";

export type SpendKind = "served" | "wasted";

/**
 * Why spend was wasted: "failed", an attempt whose output never reached a client (what a retry
 * replaced); "hedge", the loser of a hedge race; "cancelled", an attempt the client left before its
 * first token; "regenerated", a prefix generated again to resume reasoning or tool calls;
 * "restarted", a non-streaming answer dropped when it started over; "resumed", the answer so far
 * read again as the prompt of a continuation after a stream broke. Served spend has cause "".
 */
export type SpendCause = "" | "failed" | "hedge" | "cancelled" | "regenerated" | "restarted" | "resumed";

/** An addition to one row of the ledger. */
export interface SpendEntry {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  /** The API key's id ("" for requests without one: batch lines, workflow steps of the operator). */
  keyId: string;
  alias: string;
  backendId: string;
  kind: SpendKind;
  cause: SpendCause;
  usd: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** Attempts the entry is about (0 for a move of tokens between rows). */
  attempts: number;
  /** Of those, attempts whose usage sluice estimated (the backend reported none). */
  estimated: number;
}

export interface AttemptContext {
  day: string;
  keyId: string;
  /** The alias a backend served in this request's plan. */
  aliasOf(backendId: string): string;
  priceOf(backendId: string): TokenPrice | null;
}

/** The UTC day of `now`, as the ledger keys it. */
export const dayOf = (now: number): string => new Date(now).toISOString().slice(0, 10);

/** The ledger entries of one attempt's report: nothing for an attempt the backend never took. */
export function attemptSpend(ctx: AttemptContext, report: AttemptReport): SpendEntry[] {
  const entries: SpendEntry[] = [];
  const usage = report.usage;
  const entry = (backendId: string, kind: SpendKind, cause: SpendCause, u: AttemptUsage, attempts: number): SpendEntry => ({
    day: ctx.day,
    keyId: ctx.keyId,
    alias: ctx.aliasOf(backendId),
    backendId,
    kind,
    cause,
    usd: costOf(ctx.priceOf(backendId), u),
    inputTokens: u.input,
    outputTokens: u.output,
    cachedTokens: u.cachedInput,
    attempts,
    estimated: u.estimated && attempts > 0 ? 1 : 0,
  });
  if (usage && report.chunks === 0) entries.push(entry(report.backendId, "wasted", wastedCause(report), usage, 1));
  else if (usage) {
    const regenerated = (report.waste ?? []).filter((w) => w.cause === "regenerated" && w.backendId === report.backendId);
    const again = Math.min(
      usage.output,
      regenerated.reduce((n, w) => n + w.tokens, 0),
    );
    const reread = Math.min(usage.resumed ?? 0, usage.input - usage.cachedInput);
    entries.push(entry(report.backendId, "served", "", { ...usage, input: usage.input - reread, output: usage.output - again }, 1));
    if (again > 0) entries.push(entry(report.backendId, "wasted", "regenerated", outputOnly(again, usage.estimated), 0));
    if (reread > 0)
      entries.push(
        entry(report.backendId, "wasted", "resumed", { input: reread, output: 0, cachedInput: 0, estimated: usage.estimated }, 0),
      );
  }
  // Output an earlier attempt delivered into a non-streaming answer that then started over: counted
  // as served when it came, it was wasted after all.
  for (const w of report.waste ?? []) {
    if (w.cause !== "restarted" || w.tokens <= 0) continue;
    const moved = outputOnly(w.tokens, true);
    entries.push({ ...entry(w.backendId, "served", "", moved, 0), usd: -costOf(ctx.priceOf(w.backendId), moved), outputTokens: -w.tokens });
    entries.push(entry(w.backendId, "wasted", "restarted", moved, 0));
  }
  return entries;
}

function wastedCause(report: AttemptReport): SpendCause {
  if (report.errorCode === "hedge_lost") return "hedge";
  return report.outcome === "cancelled" ? "cancelled" : "failed";
}

function outputOnly(tokens: number, estimated: boolean): AttemptUsage {
  return { input: 0, output: tokens, cachedInput: 0, estimated };
}
