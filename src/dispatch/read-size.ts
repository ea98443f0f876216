// How many upstream events one read waits for. workerd hands every HTTP chunk of a streamed body
// (one SSE event) to its own read, and a read plus the write it feeds cost far more than parsing
// the event: at 1,000 streams, reading four events at a time instead of one cut sluice's CPU per
// request by a third. So when the isolate relays more events per second than `readsPerSecond`,
// a read after the first token waits for several events of its stream, but never for more than
// `maxHoldMs` of that stream's expected output: a quiet isolate, a slow stream and the first token
// still go out one event per read. No platform imports; the caller passes the time.

export interface ReadSizeOptions {
  /** Above this many relayed events per second in the isolate, reads take several events. */
  readsPerSecond: number;
  /** A read never waits for events expected later than this (at the stream's own pace). */
  maxHoldMs: number;
  maxEventsPerRead: number;
}

export const READ_SIZE_DEFAULTS: ReadSizeOptions = { readsPerSecond: 2_000, maxHoldMs: 50, maxEventsPerRead: 8 };

/**
 * What a read that starts at an event boundary waits for when it takes one event. workerd hands a
 * chunked body to JavaScript in pieces (the first ~30 bytes of an event, then the rest); waiting
 * for this many bytes makes one read per event the rule. No event that carries a token is shorter:
 * `data: {"choices":[{"delta":{"content":"x"}}]}` with its blank line is 47 bytes.
 */
export const EVENT_READ_BYTES = 40;

/** One stream's pace, learnt from its reads after the first token. */
export class StreamPace {
  /** Average bytes per event. */
  eventBytes = 0;
  /** Recent time between events (moving average); undefined until two reads were seen. */
  gapMs: number | undefined;
  private events = 0;
  private bytes = 0;
  private lastReadAt: number | undefined;

  note(bytes: number, events: number, now: number): void {
    if (events === 0) return;
    this.events += events;
    this.bytes += bytes;
    this.eventBytes = this.bytes / this.events;
    if (this.lastReadAt !== undefined) {
      const gap = (now - this.lastReadAt) / events;
      this.gapMs = this.gapMs === undefined ? gap : 0.8 * this.gapMs + 0.2 * gap;
    }
    this.lastReadAt = now;
  }
}

const isolatePolicies = new Map<number, ReadSizePolicy>();

/**
 * The isolate's policy for a `READ_BATCH_MAX_HOLD_MS` setting (a Worker var; 0 turns batching
 * off). One per isolate and setting, shared by its relays: the event rate is the isolate's.
 */
export function isolateReadSizes(maxHoldMs: string | undefined): ReadSizePolicy {
  const ms = Number(maxHoldMs ?? Number.NaN);
  const hold = Number.isFinite(ms) && ms >= 0 ? ms : READ_SIZE_DEFAULTS.maxHoldMs;
  let policy = isolatePolicies.get(hold);
  if (!policy) isolatePolicies.set(hold, (policy = new ReadSizePolicy({ ...READ_SIZE_DEFAULTS, maxHoldMs: hold })));
  return policy;
}

/** Isolate-wide: events relayed per second, and from that the size of each stream's next read. */
export class ReadSizePolicy {
  private bucketStart = 0;
  private current = 0;
  private previous = 0;

  constructor(private readonly options: ReadSizeOptions = READ_SIZE_DEFAULTS) {}

  /** Counts events a read delivered. */
  note(events: number, now: number): void {
    this.roll(now);
    this.current += events;
  }

  /** Events per second over the last second (the previous one-second bucket, weighted by overlap). */
  eventsPerSecond(now: number): number {
    this.roll(now);
    const elapsed = (now - this.bucketStart) / 1000;
    return this.previous * (1 - elapsed) + this.current;
  }

  eventsPerRead(pace: StreamPace, now: number): number {
    if (pace.gapMs === undefined) return 1;
    const byLoad = Math.ceil(this.eventsPerSecond(now) / this.options.readsPerSecond);
    const byHold = 1 + Math.floor(this.options.maxHoldMs / Math.max(pace.gapMs, 0.1));
    return Math.max(1, Math.min(this.options.maxEventsPerRead, byLoad, byHold));
  }

  /**
   * Bytes the next read starting at an event boundary waits for. For k events: k - 1 events at 90%
   * of their average size (events differ a little; waiting for one too many would hold a whole
   * gap longer), then the start of the k-th.
   */
  minBytes(pace: StreamPace, now: number): number {
    const k = this.eventsPerRead(pace, now);
    return k === 1 ? EVENT_READ_BYTES : Math.floor((k - 1) * 0.9 * pace.eventBytes) + EVENT_READ_BYTES;
  }

  private roll(now: number): void {
    const buckets = Math.floor((now - this.bucketStart) / 1000);
    if (buckets <= 0) return;
    this.previous = buckets === 1 ? this.current : 0;
    this.current = 0;
    this.bucketStart += buckets * 1000;
  }
}
