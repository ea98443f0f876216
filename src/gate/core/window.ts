// A sliding-window counter over fixed time buckets: O(buckets) memory whatever the traffic.
// Shared by the circuit breaker (failure rate) and the retry budget (retry ratio).

export interface WindowSnapshot {
  bucketMs: number;
  /** Per bucket: [bucket start, counts by series]. */
  buckets: Array<[number, number[]]>;
}

export class SlidingWindowCounter {
  private buckets: Array<[number, number[]]> = [];

  constructor(
    private readonly windowMs: number,
    private readonly series: number,
    private readonly bucketCount = 10,
  ) {}

  private get bucketMs(): number {
    return Math.max(1, Math.ceil(this.windowMs / this.bucketCount));
  }

  add(now: number, seriesIndex: number, amount = 1): void {
    this.evict(now);
    const start = now - (now % this.bucketMs);
    let last = this.buckets[this.buckets.length - 1];
    if (!last || last[0] !== start) {
      last = [start, new Array<number>(this.series).fill(0)];
      this.buckets.push(last);
    }
    last[1][seriesIndex] = (last[1][seriesIndex] ?? 0) + amount;
  }

  /** Totals per series over the window ending at `now`. */
  totals(now: number): number[] {
    this.evict(now);
    const sums = new Array<number>(this.series).fill(0);
    for (const [, counts] of this.buckets) for (const [i, c] of counts.entries()) sums[i] = (sums[i] ?? 0) + c;
    return sums;
  }

  reset(): void {
    this.buckets = [];
  }

  snapshot(): WindowSnapshot {
    return { bucketMs: this.bucketMs, buckets: this.buckets.map(([s, c]) => [s, [...c]]) };
  }

  restore(snap: WindowSnapshot): void {
    this.buckets = snap.bucketMs === this.bucketMs ? snap.buckets.map(([s, c]) => [s, [...c]]) : [];
  }

  private evict(now: number): void {
    const oldest = now - this.windowMs;
    while (this.buckets.length && this.buckets[0]![0] + this.bucketMs <= oldest) this.buckets.shift();
    // A clock that went backwards (restored snapshot from another machine) must not keep stale future buckets.
    while (this.buckets.length && this.buckets[this.buckets.length - 1]![0] > now) this.buckets.pop();
  }
}
