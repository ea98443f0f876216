// Estimates how fast a queue drains (slots freed per second) to tell a rejected client when to
// come back: Retry-After = (queue length + 1) / drain rate, clamped to 1..maxSec seconds.
import { SlidingWindowCounter } from "./window";

export class DrainRate {
  private readonly frees: SlidingWindowCounter;

  constructor(private readonly windowMs = 10_000) {
    this.frees = new SlidingWindowCounter(windowMs, 1);
  }

  /** Records that a slot was freed at `now`. */
  record(now: number): void {
    this.frees.add(now, 0);
  }

  perSecond(now: number): number {
    return (this.frees.totals(now)[0] ?? 0) / (this.windowMs / 1000);
  }

  retryAfterSeconds(now: number, queued: number, maxSec = 60): number {
    const rate = this.perSecond(now);
    const seconds = rate > 0 ? Math.ceil((queued + 1) / rate) : queued + 1;
    return Math.min(maxSec, Math.max(1, seconds));
  }
}
