// Retry budget for one tenant: retries may be at most `ratio` of requests over a sliding window,
// plus a small floor so a quiet tenant can still retry. An outage then costs at most
// (1 + ratio) upstream calls per request instead of maxAttempts times as many.
import { SlidingWindowCounter } from "./window";

export interface RetryBudgetOptions {
  ratio: number;
  minRetries: number;
  windowMs: number;
}

const REQUESTS = 0;
const RETRIES = 1;

export class RetryBudget {
  private readonly window: SlidingWindowCounter;

  constructor(private readonly opts: RetryBudgetOptions) {
    this.window = new SlidingWindowCounter(opts.windowMs, 2);
  }

  recordRequest(now: number): void {
    this.window.add(now, REQUESTS);
  }

  /** Spends one retry if the budget has room; returns whether the retry may happen. */
  tryRetry(now: number): boolean {
    if (!this.hasRoom(now)) return false;
    this.window.add(now, RETRIES);
    return true;
  }

  hasRoom(now: number): boolean {
    const [requests = 0, retries = 0] = this.window.totals(now);
    return retries < Math.max(this.opts.minRetries, Math.floor(requests * this.opts.ratio));
  }

  usage(now: number): { requests: number; retries: number; allowed: number } {
    const [requests = 0, retries = 0] = this.window.totals(now);
    return { requests, retries, allowed: Math.max(this.opts.minRetries, Math.floor(requests * this.opts.ratio)) };
  }
}
