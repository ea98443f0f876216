// A tenant's rate limits: requests per minute and tokens per minute, each a token bucket that
// holds a minute's allowance and refills continuously, so a tenant may burst up to its limit and
// then goes at the limit's pace.
//
// Tokens are known only once a request ends, so admission charges an estimate (the prompt's
// tokens plus the `max_tokens` asked for) and the end of the request settles the difference: a
// refund when fewer were generated, a further charge when no `max_tokens` was given. A bucket may
// so go below zero (debt), and admits nothing until it has refilled. Time is passed in (`now`),
// never read.

export class TokenBucket {
  private level: number;
  private updatedAt: number;

  constructor(
    readonly capacity: number,
    private readonly periodMs: number,
    now: number,
  ) {
    this.level = capacity;
    this.updatedAt = now;
  }

  /** What the bucket holds at `now` (negative: in debt). */
  available(now: number): number {
    if (now > this.updatedAt) {
      // Multiplied before divided: whole numbers of tokens and milliseconds stay exact.
      this.level = Math.min(this.capacity, this.level + ((now - this.updatedAt) * this.capacity) / this.periodMs);
      this.updatedAt = now;
    }
    return this.level;
  }

  /** How long until `cost` can be taken (0: now). A cost above the capacity needs a full bucket. */
  waitMs(cost: number, now: number): number {
    const missing = Math.min(cost, this.capacity) - this.available(now);
    return missing <= 0 ? 0 : Math.ceil((missing * this.periodMs) / this.capacity);
  }

  /** Takes `cost` without asking (a charge after the fact), or gives it back when negative. */
  charge(cost: number, now: number): void {
    this.level = Math.min(this.capacity, this.available(now) - cost);
  }
}

export interface RateLimitOptions {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

export type RateVerdict = { ok: true } | { ok: false; limit: "requests" | "tokens"; perMinute: number; retryAfterMs: number };

const MINUTE_MS = 60_000;

export class TenantRateLimit {
  private readonly requests: TokenBucket | undefined;
  private readonly tokens: TokenBucket | undefined;

  constructor(options: RateLimitOptions, now: number) {
    this.requests = options.requestsPerMinute ? new TokenBucket(options.requestsPerMinute, MINUTE_MS, now) : undefined;
    this.tokens = options.tokensPerMinute ? new TokenBucket(options.tokensPerMinute, MINUTE_MS, now) : undefined;
  }

  /** Admits a request that is estimated to use `tokens` (charging both buckets), or says which limit is reached and for how long. */
  admit(tokens: number, now: number): RateVerdict {
    const requestWait = this.requests?.waitMs(1, now) ?? 0;
    const tokenWait = this.tokens?.waitMs(tokens, now) ?? 0;
    if (requestWait > 0 || tokenWait > 0) {
      // The longer wait is the one that decides when the request could pass.
      return requestWait >= tokenWait
        ? { ok: false, limit: "requests", perMinute: this.requests!.capacity, retryAfterMs: requestWait }
        : { ok: false, limit: "tokens", perMinute: this.tokens!.capacity, retryAfterMs: tokenWait };
    }
    this.requests?.charge(1, now);
    this.tokens?.charge(tokens, now);
    return { ok: true };
  }

  /** A request admitted with `estimated` tokens got no slot after all: both charges go back. */
  refund(estimated: number, now: number): void {
    this.requests?.charge(-1, now);
    this.tokens?.charge(-estimated, now);
  }

  /** A request admitted with an estimate of `estimated` tokens used `used`: the difference is settled. */
  settle(estimated: number, used: number, now: number): void {
    if (used !== estimated) this.tokens?.charge(used - estimated, now);
  }

  /** What each bucket holds now, rounded down; null for a limit the tenant does not set. */
  usage(now: number): {
    requests: { perMinute: number; available: number } | null;
    tokens: { perMinute: number; available: number } | null;
  } {
    const of = (b: TokenBucket | undefined) => (b ? { perMinute: b.capacity, available: Math.floor(b.available(now)) } : null);
    return { requests: of(this.requests), tokens: of(this.tokens) };
  }
}
