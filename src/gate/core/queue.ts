// Bounded priority queue of requests waiting for a concurrency slot. FIFO within a priority;
// when full, a newcomer may displace the newest entry of a strictly lower priority (which is then
// rejected), so high-priority traffic is shed last.

/**
 * Highest first. "background" is batch work (jobs/): it takes only slots interactive requests leave
 * free, up to limits.background, and is never asked for by a client's X-Priority.
 */
export const PRIORITIES = ["high", "normal", "low", "background"] as const;
export type Priority = (typeof PRIORITIES)[number];
/** What a client may ask for with X-Priority. */
export const CLIENT_PRIORITIES = ["high", "normal", "low"] as const satisfies readonly Priority[];

export interface QueueEntry<T> {
  id: string;
  priority: Priority;
  enqueuedAt: number;
  value: T;
}

export type OfferResult<T> = { accepted: true; displaced?: QueueEntry<T> } | { accepted: false };

export class BoundedPriorityQueue<T> {
  private readonly lanes: Record<Priority, QueueEntry<T>[]> = { high: [], normal: [], low: [], background: [] };
  private readonly byId = new Map<string, QueueEntry<T>>();

  constructor(private readonly capacity: () => number) {}

  get size(): number {
    return this.byId.size;
  }

  sizeOf(priority: Priority): number {
    return this.lanes[priority].length;
  }

  /** Entries of `priority` or higher: those a newcomer of that priority must not pass. */
  sizeAtOrAbove(priority: Priority): number {
    let n = 0;
    for (const p of PRIORITIES.slice(0, PRIORITIES.indexOf(priority) + 1)) n += this.lanes[p].length;
    return n;
  }

  offer(entry: QueueEntry<T>): OfferResult<T> {
    if (this.byId.has(entry.id)) throw new Error(`duplicate queue entry ${entry.id}`);
    let displaced: QueueEntry<T> | undefined;
    if (this.size >= this.capacity()) {
      const rank = PRIORITIES.indexOf(entry.priority);
      const victimLane = [...PRIORITIES].reverse().find((p) => PRIORITIES.indexOf(p) > rank && this.lanes[p].length > 0);
      if (!victimLane) return { accepted: false };
      displaced = this.lanes[victimLane].pop()!;
      this.byId.delete(displaced.id);
    }
    this.lanes[entry.priority].push(entry);
    this.byId.set(entry.id, entry);
    return displaced ? { accepted: true, displaced } : { accepted: true };
  }

  /** Removes and returns the first entry, in priority order, that `eligible` accepts. */
  takeFirst(eligible: (e: QueueEntry<T>) => boolean = () => true): QueueEntry<T> | undefined {
    for (const p of PRIORITIES) {
      const lane = this.lanes[p];
      const i = lane.findIndex(eligible);
      if (i >= 0) {
        const [e] = lane.splice(i, 1);
        this.byId.delete(e!.id);
        return e;
      }
    }
    return undefined;
  }

  remove(id: string): QueueEntry<T> | undefined {
    const e = this.byId.get(id);
    if (!e) return undefined;
    const lane = this.lanes[e.priority];
    lane.splice(lane.indexOf(e), 1);
    this.byId.delete(id);
    return e;
  }

  /** Removes and returns every entry that `doomed` selects. */
  removeWhere(doomed: (e: QueueEntry<T>) => boolean): QueueEntry<T>[] {
    const removed: QueueEntry<T>[] = [];
    for (const p of PRIORITIES) {
      const keep: QueueEntry<T>[] = [];
      for (const e of this.lanes[p]) (doomed(e) ? removed : keep).push(e);
      this.lanes[p] = keep;
    }
    for (const e of removed) this.byId.delete(e.id);
    return removed;
  }

  /** Every entry, in no particular order. */
  entries(): IterableIterator<QueueEntry<T>> {
    return this.byId.values();
  }

  oldestEnqueuedAt(): number | undefined {
    let oldest: number | undefined;
    for (const p of PRIORITIES) {
      const head = this.lanes[p][0];
      if (head && (oldest === undefined || head.enqueuedAt < oldest)) oldest = head.enqueuedAt;
    }
    return oldest;
  }
}
