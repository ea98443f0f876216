// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and Jitter"):
// delay = random(0, min(maxDelay, base * 2^(retry-1))). Jitter spreads synchronized retries so a
// recovering backend is not hit by a wave. A backend's Retry-After raises the floor, still capped.

export interface BackoffOptions {
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * @param retry 1 for the first retry, 2 for the second, ...
 * @param random a number in [0, 1); injectable for tests
 * @param retryAfterMs what the backend asked for, if anything
 */
export function backoffDelayMs(retry: number, opts: BackoffOptions, random: number, retryAfterMs?: number): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const jittered = Math.floor(random * ceiling);
  const floor = retryAfterMs === undefined ? 0 : Math.min(opts.maxDelayMs, Math.max(0, retryAfterMs));
  return Math.max(jittered, floor);
}
