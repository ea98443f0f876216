// Latency histogram with fixed log-spaced buckets: constant memory, percentiles within ~10%.

const BUCKETS_PER_DOUBLING = 8;
const MAX_BUCKET = 8 * 24; // up to 2^24 ms (~4.6 h)

/** Sample count and percentiles (ms); a percentile is absent while there are no samples. */
export type LatencySummary = { count: number; p50?: number; p95?: number; p99?: number };

/** A histogram's stored form: [bucket, count] for each bucket that has counts. */
export type SavedHistogram = Array<[number, number]>;

export class LatencyHistogram {
  private readonly counts = new Uint32Array(MAX_BUCKET + 1);
  private total = 0;

  record(ms: number): void {
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
    if (this.total === 0) return undefined;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i <= MAX_BUCKET; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.round(2 ** ((i + 1) / BUCKETS_PER_DOUBLING));
    }
    return undefined;
  }

  toJSON(): SavedHistogram {
    const out: SavedHistogram = [];
    this.counts.forEach((n, bucket) => {
      if (n > 0) out.push([bucket, n]);
    });
    return out;
  }

  /** Replaces the counts with stored ones (buckets out of range are ignored). */
  restore(saved: SavedHistogram): void {
    this.counts.fill(0);
    this.total = 0;
    for (const [bucket, n] of saved) {
      if (!Number.isInteger(bucket) || bucket < 0 || bucket > MAX_BUCKET || !(n > 0)) continue;
      this.counts[bucket] = n;
      this.total += n;
    }
  }

  summary(): LatencySummary {
    return { count: this.total, p50: this.quantile(0.5), p95: this.quantile(0.95), p99: this.quantile(0.99) };
  }
}
