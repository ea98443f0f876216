// Hedged first tokens: when an attempt's first token is later than most of its model's lately, a
// second attempt starts on another backend of the model, and the first to produce a token goes on
// while the other is cancelled (dispatch/hedge-race.ts runs the race). This module decides when:
// the delay, whether the budget has room, and which backend takes the hedge.
//
// The delay is the p95 of the model's first tokens over the last minute, across its backends, not
// the slow backend's own: a backend slow on more than 1 attempt in 20 would put its own p95 in its
// slow mode and never be hedged. And it is at least twice their median: past the p95 alone lies 1
// first token in 20 by definition, most of them a healthy server's ordinary tail, which would spend
// a 5% budget before the slow starts (ten times the median, not a fifth more) came.
import type { HedgingConfig } from "../../config/schema";
import type { BackendView } from "./backend-picker";
import { RetryBudget } from "./budget";
import { LatencyHistogram } from "./histogram";
import type { PlanEntry } from "./plan";

/** First tokens are kept in two windows of this length: the current one and the one before. */
export const TTFT_WINDOW_MS = 30_000;
/** A model's delay is worked out again at most this often (it reads every bucket of two histograms). */
const DELAY_TTL_MS = 1_000;

/** The first tokens of one model over the last one to two windows. */
class RecentTtft {
  private current = new LatencyHistogram();
  private previous = new LatencyHistogram();
  private windowStart = 0;
  private cached: { ms: number; at: number } | undefined;

  record(ms: number, now: number): void {
    this.rotate(now);
    this.current.record(ms);
  }

  /** The later of the samples' p95 and twice their median, once there are `minSamples`; worked out at most once per DELAY_TTL_MS. */
  late(minSamples: number, now: number): number | undefined {
    if (this.cached && now - this.cached.at < DELAY_TTL_MS) return this.cached.ms;
    this.rotate(now);
    if (this.current.count + this.previous.count < minSamples) return undefined;
    const both = [this.current, this.previous];
    const ms = Math.max(LatencyHistogram.quantileOf(both, 0.95)!, 2 * LatencyHistogram.quantileOf(both, 0.5)!);
    this.cached = { ms, at: now };
    return ms;
  }

  private rotate(now: number): void {
    if (now - this.windowStart < TTFT_WINDOW_MS) return;
    // A gap of two windows or more leaves nothing recent.
    this.previous = now - this.windowStart < 2 * TTFT_WINDOW_MS ? this.current : new LatencyHistogram();
    this.current = new LatencyHistogram();
    this.windowStart = now - (now % TTFT_WINDOW_MS);
  }
}

/** Why a hedge was not started. */
export type NoHedge = "not_waiting" | "saturated" | "no_backend" | "budget";

export class Hedging {
  /** By model alias (the config's, so bounded by MAX_ALIASES). */
  private readonly ttft = new Map<string, RecentTtft>();
  private readonly budget: RetryBudget;

  constructor(
    private readonly config: HedgingConfig,
    windowMs: number,
  ) {
    this.budget = new RetryBudget({ ratio: config.budgetRatio, minRetries: 1, windowMs });
  }

  get enabled(): boolean {
    return this.config.enabled;
  }

  /** A request was admitted: the budget grows with traffic. */
  requestAdmitted(now: number): void {
    this.budget.recordRequest(now);
  }

  /** An attempt of `alias` produced its first token `ms` after it started (kept while hedging is on). */
  firstToken(alias: string, ms: number, now: number): void {
    if (!this.config.enabled) return;
    let recent = this.ttft.get(alias);
    if (!recent) this.ttft.set(alias, (recent = new RecentTtft()));
    recent.record(ms, now);
  }

  /**
   * How long the attempt on the plan entry at `cursor` waits for its first token before asking for
   * a hedge; undefined when it never will: hedging is off, the model has no other backend in the
   * plan, or too few of its first tokens were seen lately to know what is late.
   */
  delayFor(plan: readonly PlanEntry[], cursor: number, now: number): number | undefined {
    const entry = plan[cursor];
    if (!this.config.enabled || !entry || !plan.some((e) => e.alias === entry.alias && e.backendId !== entry.backendId)) return undefined;
    const late = this.ttft.get(entry.alias)?.late(this.config.minSamples, now);
    return late === undefined ? undefined : Math.max(this.config.minDelayMs, late);
  }

  /** Spends one hedge of the budget if it has room. */
  trySpend(now: number): boolean {
    return this.budget.tryRetry(now);
  }
}

/**
 * The plan entry that takes a hedge of the attempt at `cursor`: another backend of the same model
 * (a hedge is the same answer from elsewhere; fallbacks are for failures) that can take it now:
 * closed breaker (a probe is a fresh request's), a free slot, no Retry-After. Of those, the one whose
 * server reports the fewest requests waiting, the earliest in the plan among equals.
 */
export function pickHedge(view: BackendView, plan: readonly PlanEntry[], cursor: number, now: number): number | undefined {
  const primary = plan[cursor];
  if (!primary) return undefined;
  let best: { cursor: number; waiting: number } | undefined;
  plan.forEach((entry, i) => {
    if (entry.alias !== primary.alias || entry.backendId === primary.backendId) return;
    const id = entry.backendId;
    if (view.breaker(id)?.stateAt(now) !== "closed" || view.inFlight(id) >= view.capacity(id)) return;
    if ((view.notBefore(id) ?? 0) > now) return;
    const waiting = view.waiting(id, now);
    if (!best || waiting < best.waiting) best = { cursor: i, waiting };
  });
  return best?.cursor;
}
