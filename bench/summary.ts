// Turning call results into the figures the report shows.
import type { CallResult, Outcome } from "./load";

export interface Percentiles {
  p50?: number;
  p95?: number;
  p99?: number;
}

export interface Summary {
  calls: number;
  outcomes: Partial<Record<Outcome, number>>;
  ttftMs: Percentiles;
  e2eMs: Percentiles;
  /** Tokens delivered to clients per second of wall time. */
  tokensPerSec: number;
  /** Share of calls that ended with exactly the expected text. */
  exactShare: number;
  /** Rejections and error events by status and code. */
  errors: Record<string, number>;
}

/** One system's figures in one scenario (the overload-only fields are set there). */
export interface SystemRun {
  system: string;
  summary: Summary;
  /** Upstream calls the sims saw per client call. */
  attemptsPerCall: number;
  router?: { cpuCores: number; rssMb: number };
  /** [seconds into the run, share of GPU slots busy]. */
  utilisation: Array<[number, number]>;
  utilisationWhileQueued?: number;
  rejected429Ms?: Percentiles;
  maxQueueDepth?: number;
  /** Chaos runs: what the sims' tokens cost (bench/chaos.ts). */
  spend?: ChaosSpend;
  extra?: Record<string, unknown>;
}

/**
 * A run's spend by the sims' meter (every prompt a sim took and every token it generated, whoever
 * sent them), against what the whole answers the clients got would cost: the rest bought nothing
 * whole (failed attempts, cut streams, calls that ended without an answer). For sluice, its own
 * ledger's served and wasted too (GET /admin/tenants/{t}/spend).
 */
export interface ChaosSpend {
  usd: number;
  answersUsd: number;
  restUsd: number;
  ledger?: { servedUsd: number; wastedUsd: number; wastedByCause: Record<string, number>; estimatedAttempts: number };
}

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return {};
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

export function summarize(results: CallResult[], wallMs: number): Summary {
  const outcomes: Partial<Record<Outcome, number>> = {};
  for (const r of results) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  const served = results.filter((r) => r.status === 200);
  const errors: Record<string, number> = {};
  for (const r of results) if (r.errorCode) errors[r.errorCode] = (errors[r.errorCode] ?? 0) + 1;
  return {
    calls: results.length,
    outcomes,
    ttftMs: percentiles(served.flatMap((r) => (r.ttftMs === undefined ? [] : [r.ttftMs]))),
    e2eMs: percentiles(served.map((r) => r.totalMs)),
    tokensPerSec: round(results.reduce((n, r) => n + r.tokens, 0) / (wallMs / 1000)),
    exactShare: results.length ? round((outcomes.exact ?? 0) / results.length, 5) : 0,
    errors,
  };
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
