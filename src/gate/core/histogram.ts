// Latency histogram with fixed log-spaced buckets: constant memory, percentiles within ~10%.

const BUCKETS_PER_DOUBLING = 8;
const MAX_BUCKET = 8 * 24; // up to 2^24 ms (~4.6 h)

/** Sample count and percentiles (ms); a percentile is absent while there are no samples. */
export type LatencySummary = { count: number; p50?: number; p95?: number; p99?: number };

/**
 * A histogram's stored form: [bucket, count] for each bucket that has counts, and [SUM_BUCKET, sum
 * of the samples in ms] (absent in forms stored before sums were kept). Adding two forms entry by
 * entry adds their histograms.
 */
export type SavedHistogram = Array<[number, number]>;

const SUM_BUCKET = -1;

/** Upper bounds (ms) of the buckets Prometheus is given (`le`, in seconds there): TTFT and end-to-end latency, 5 ms to 5 min. */
export const EXPORTED_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000];

/** Cumulative counts at each of EXPORTED_BOUNDS_MS, the count and the sum (ms), as Prometheus histograms need them. */
export interface ExportedHistogram {
  cumulative: number[];
  count: number;
  sumMs: number;
}

export class LatencyHistogram {
  private readonly counts = new Uint32Array(MAX_BUCKET + 1);
  private total = 0;
  private sumMs = 0;

  record(ms: number): void {
    this.sumMs += Math.max(0, ms);
    const v = Math.max(1, ms);
    const bucket = Math.min(MAX_BUCKET, Math.floor(Math.log2(v) * BUCKETS_PER_DOUBLING));
    this.counts[bucket]!++;
    this.total++;
  }

  get count(): number {
    return this.total;
  }

  /** Upper bound of the bucket holding the q-quantile (0 < q <= 1), in ms; undefined when empty. */
  quantile(q: number): number | undefined {
    return LatencyHistogram.quantileOf([this], q);
  }

  /** The q-quantile of the samples of several histograms together, without merging them. */
  static quantileOf(histograms: readonly LatencyHistogram[], q: number): number | undefined {
    const total = histograms.reduce((n, h) => n + h.total, 0);
    if (total === 0) return undefined;
    const rank = Math.ceil(q * total);
    let seen = 0;
    for (let i = 0; i <= MAX_BUCKET; i++) {
      for (const h of histograms) seen += h.counts[i]!;
      if (seen >= rank) return Math.round(2 ** ((i + 1) / BUCKETS_PER_DOUBLING));
    }
    return undefined;
  }

  toJSON(): SavedHistogram {
    const out: SavedHistogram = [];
    this.counts.forEach((n, bucket) => {
      if (n > 0) out.push([bucket, n]);
    });
    if (this.sumMs > 0) out.push([SUM_BUCKET, this.sumMs]);
    return out;
  }

  /**
   * For Prometheus: a sample counts under a bound once its bucket's upper bound is within it, so a
   * sample up to ~9% under a bound may count under the next one.
   */
  exported(): ExportedHistogram {
    const cumulative = EXPORTED_BOUNDS_MS.map(() => 0);
    this.counts.forEach((n, bucket) => {
      if (n === 0) return;
      const upper = 2 ** ((bucket + 1) / BUCKETS_PER_DOUBLING);
      EXPORTED_BOUNDS_MS.forEach((bound, i) => {
        if (upper <= bound) cumulative[i]! += n;
      });
    });
    return { cumulative, count: this.total, sumMs: this.sumMs };
  }

  /** Adds `other`'s samples to this one's. */
  merge(other: LatencyHistogram): void {
    other.counts.forEach((n, bucket) => {
      this.counts[bucket]! += n;
    });
    this.total += other.total;
    this.sumMs += other.sumMs;
  }

  /** Replaces the counts with stored ones (buckets out of range are ignored). */
  restore(saved: SavedHistogram): void {
    this.counts.fill(0);
    this.total = 0;
    this.sumMs = 0;
    for (const [bucket, n] of saved) {
      if (bucket === SUM_BUCKET && n > 0) this.sumMs = n;
      if (!Number.isInteger(bucket) || bucket < 0 || bucket > MAX_BUCKET || !(n > 0)) continue;
      this.counts[bucket] = n;
      this.total += n;
    }
  }

  summary(): LatencySummary {
    return { count: this.total, p50: this.quantile(0.5), p95: this.quantile(0.95), p99: this.quantile(0.99) };
  }
}
