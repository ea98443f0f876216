// How many attempts a backend takes at once, learned from its first-token latency: additive
// increase, multiplicative decrease (as TCP, and Envoy's and Netflix's adaptive concurrency). A GPU
// server that is handed more than it can batch queues the excess itself, invisibly, and its time to
// first token climbs; sluice would rather keep that excess in its own queue, bounded and visible.
//
// - Baseline: the lowest TTFT seen lately (the lower of this window's and the last one's), what the
//   backend answers in when it is not queueing.
// - A first token later than `tolerance` times the baseline plus `slackMs` is a sign of queueing:
//   the limit is cut by `backoff`, at most once per `cooldownMs` (one congestion event, one cut).
// - A first token in time while the backend holds as many attempts as the limit allows: the limit
//   grows by 1/limit, about one a round of answers, up to the configured maxConcurrency.
// - No headers or first token in time (a timeout) from a backend that answered within the window
//   is slow, not failing: the limit is cut, and the caller leaves its breaker and the retry budget
//   alone. From a backend that answered nothing lately, it is a failure, as before.
// Never below `minLimit` (or maxConcurrency, if lower): at a handful of generations a GPU batches
// well, and latency there says more about prompts than about load. Pure: time is an argument.

export interface AdaptiveOptions {
  tolerance: number;
  slackMs: number;
  backoff: number;
  cooldownMs: number;
  windowMs: number;
  minLimit: number;
}

export const ADAPTIVE_DEFAULTS: AdaptiveOptions = {
  tolerance: 2,
  slackMs: 250,
  backoff: 0.9,
  cooldownMs: 1_000,
  windowMs: 30_000,
  minLimit: 4,
};

export type Timeout = "slow" | "failing";

export class AdaptiveLimit {
  private value: number;
  private windowStart = Number.NEGATIVE_INFINITY;
  private windowMin = Number.POSITIVE_INFINITY;
  private lastWindowMin = Number.POSITIVE_INFINITY;
  private lastCutAt = Number.NEGATIVE_INFINITY;
  private lastAnswerAt = Number.NEGATIVE_INFINITY;

  constructor(
    private max: number,
    private readonly opts: AdaptiveOptions = ADAPTIVE_DEFAULTS,
  ) {
    this.value = max;
  }

  /** Attempts the backend may hold now. */
  get limit(): number {
    return Math.max(this.floor, Math.min(this.max, Math.floor(this.value)));
  }

  /** The unloaded TTFT it compares against, once it has seen one. */
  baselineMs(): number | undefined {
    const b = Math.min(this.windowMin, this.lastWindowMin);
    return Number.isFinite(b) ? b : undefined;
  }

  /** A first token after `ttftMs`, while the backend held `inFlight` attempts (this one included). */
  answered(ttftMs: number, inFlight: number, now: number): void {
    const baseline = this.baselineMs();
    this.observe(ttftMs, now);
    this.lastAnswerAt = now;
    if (baseline !== undefined && ttftMs > baseline * this.opts.tolerance + this.opts.slackMs) this.cut(now);
    else if (inFlight >= this.limit) this.value = Math.min(this.max, Math.max(this.value, this.floor) + 1 / this.limit);
  }

  /** No headers or first token in time: slow (the limit is cut) when it answered lately, else failing. */
  timedOut(now: number): Timeout {
    if (now - this.lastAnswerAt > this.opts.windowMs) return "failing";
    this.cut(now);
    return "slow";
  }

  /** The configured maxConcurrency changed: the limit stays within it. */
  resize(max: number): void {
    this.max = max;
    this.value = Math.min(this.value, max);
  }

  private get floor(): number {
    return Math.min(this.max, this.opts.minLimit);
  }

  private cut(now: number): void {
    if (now - this.lastCutAt < this.opts.cooldownMs) return;
    this.lastCutAt = now;
    this.value = Math.max(this.floor, Math.min(this.value, this.max) * this.opts.backoff);
  }

  private observe(ttftMs: number, now: number): void {
    if (now - this.windowStart >= this.opts.windowMs) {
      this.lastWindowMin = this.windowMin;
      this.windowMin = ttftMs;
      this.windowStart = now;
    } else this.windowMin = Math.min(this.windowMin, ttftMs);
  }
}
