// The gate's lease table in SQLite, written behind: saves and removals collect in memory and reach
// storage together, in one transaction, at most LEASE_FLUSH_MS later. A request that starts and
// ends within that window (or whose lease is renewed several times in it) costs no statement at all;
// at a few hundred requests a second, per-request statements were a tenth of the router's CPU.
// A gate that restarts forgets only leases changed in the last LEASE_FLUSH_MS; callers that must
// not lose a lease (one a journal entry points to) save it with `now` the first time.

import { FlushTimer } from "./flush-timer";
import { keyedTable } from "./keyed-table";

export const LEASE_FLUSH_MS = 50;

export interface LeaseRow {
  id: string;
  deadline: number;
}

export class LeaseRows<L extends LeaseRow> {
  /** Lease id -> the lease to write, or null to delete its row. */
  private readonly pending = new Map<string, L | null>();
  /** Ids that have a row in storage (a lease removed before its first flush needs no DELETE). */
  private readonly stored = new Set<string>();
  private readonly timer: FlushTimer;
  /** The flush callers of `flushed()` wait for, while one is due. */
  private soon: Promise<void> | undefined;

  constructor(
    private readonly storage: DurableObjectStorage,
    flushMs = LEASE_FLUSH_MS,
  ) {
    // A failed write keeps its rows pending for the next flush.
    this.timer = new FlushTimer(
      () => this.flush(),
      flushMs,
      "lease rows",
      () => this.pending.size > 0,
    );
    keyedTable(storage, "leases", "id TEXT PRIMARY KEY, deadline INTEGER NOT NULL, data TEXT NOT NULL");
  }

  /** Every stored lease (at start-up). */
  load(): L[] {
    const leases = this.storage.sql
      .exec<{ data: string }>(`SELECT data FROM leases`)
      .toArray()
      .map((row) => JSON.parse(row.data) as L);
    for (const lease of leases) this.stored.add(lease.id);
    return leases;
  }

  /** Whether the lease has a row in storage. */
  holds(id: string): boolean {
    return this.stored.has(id);
  }

  /** Stores the lease as it is when the rows are flushed; `now` flushes at once. */
  save(lease: L, now = false): void {
    this.pending.set(lease.id, lease);
    if (now) this.flush();
    else this.timer.schedule();
  }

  /**
   * Resolves once every waiting write is in storage. The flush runs after the calls that arrived
   * meanwhile had their turn, so settles that come together share one transaction: a settle's own
   * transaction was an eighth of the router's CPU per request (docs/performance.md).
   */
  flushed(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    this.soon ??= new Promise<void>((resolve, reject) =>
      setTimeout(() => {
        this.soon = undefined;
        try {
          this.flush();
          resolve();
        } catch (err) {
          reject(err);
        }
      }, 0),
    );
    return this.soon;
  }

  /** Forgets every waiting write (the tenant is deleted and its storage erased). */
  discard(): void {
    this.timer.cancel();
    this.pending.clear();
    this.stored.clear();
  }

  remove(id: string): void {
    if (!this.stored.has(id)) {
      this.pending.delete(id);
      return;
    }
    this.pending.set(id, null);
    this.timer.schedule();
  }

  flush(): void {
    this.timer.cancel();
    if (this.pending.size === 0) return;
    const sql = this.storage.sql;
    this.storage.transactionSync(() => {
      for (const [id, lease] of this.pending) {
        if (lease)
          sql.exec(`INSERT OR REPLACE INTO leases (id, deadline, data) VALUES (?, ?, ?)`, id, lease.deadline, JSON.stringify(lease));
        else sql.exec(`DELETE FROM leases WHERE id = ?`, id);
      }
    });
    for (const [id, lease] of this.pending) {
      if (lease) this.stored.add(id);
      else this.stored.delete(id);
    }
    this.pending.clear();
  }
}
