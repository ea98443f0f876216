// The replay journal: one entry per Idempotency-Key (or semantic key) of a tenant, holding the
// request's body hash, its state and the chunks relayed so far. It lets a finished request be
// replayed, a twin join the live generation, and a reconnect or retry carry on from the last
// checkpoint. Bounded by age, entry count, total bytes and bytes per entry.
// Works on the Durable Object's SQLite storage (synchronous `sql.exec`), nothing else.
//
// Appends are written behind: they collect in memory and reach storage together at most
// APPEND_FLUSH_MS later. Every write locks the object's output gate (all its replies wait) until
// the write commits, so a write per checkpoint, hundreds a second, kept every reply of the gate
// waiting; one flush per window does not. Reads see what waits. A checkpoint's caller waits for
// `flushed()` before it hears "recorded", and a read writes the entry's waiting appends first:
// a reply never promises, nor shows, what a restart could lose.
//
// A running entry's totals (chunks, text, tokens, bytes) are its row's plus what each chunk row
// written since adds (entry-totals.ts): a write of appends is one row, not two. The entry's end
// folds them into its row, and so does a write that has no chunks (its entry is over its size).

import { FlushTimer } from "./flush-timer";
import { keyedTable } from "./keyed-table";
import { addChange, type EntryTotals, NO_TOTALS, type TotalsChange, totalsChange } from "./entry-totals";
import type { EntryKind, EntrySnapshot, EntryState, JournalLimits } from "./core/journal-entry";
import type { JournalPort } from "./core/ports";
import type { Checkpoint } from "./core/protocol";

export const APPEND_FLUSH_MS = 50;

interface EntryRow {
  key: string;
  kind: EntryKind;
  body_hash: string;
  state: EntryState;
  request_id: string;
  lease_id: string | null;
  chunk_count: number;
  text: string;
  tokens: number;
  bytes: number;
  overflow: number;
  updated_at: number;
  expires_at: number;
  [column: string]: SqlStorageValue;
}

type ChunkRow = TotalsChange & { seq: number; data: string; [column: string]: SqlStorageValue };

/** An entry's totals: its row's (as of its last fold), and what its chunk rows from there add. */
function totalsFrom(row: EntryRow, chunkRows: ChunkRow[]): EntryTotals {
  const folded = { count: row.chunk_count, text: row.text, tokens: row.tokens, bytes: row.bytes, overflow: row.overflow === 1 };
  return chunkRows.filter((c) => c.seq >= row.chunk_count).reduce(addChange, folded);
}

/** Appends to one entry that wait for the next flush. */
interface PendingAppends {
  leaseId: string;
  chunks: string[];
  bytes: number;
  text: string;
  tokens: number;
  overflow: boolean;
  updatedAt: number;
}

export class ReplayJournal implements JournalPort {
  // Totals kept in memory (read once from storage), so checking the limits costs nothing per request.
  private entries = 0;
  private bytes = 0;
  private expiredSweepAt = 0;
  private readonly pending = new Map<string, PendingAppends>();
  private readonly flushTimer: FlushTimer;
  private flushWaiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  /** Running entries' totals as stored, read from storage once (entries with a lease: at most the gate's leases). */
  private readonly totalsOf = new Map<string, EntryTotals>();

  private readonly sql: SqlStorage;

  constructor(
    storage: DurableObjectStorage,
    /** Told of the keys whose appends were just written or whose run ended (their followers may read them). */
    private readonly onChanged: (keys: string[]) => void = () => {},
    flushMs = APPEND_FLUSH_MS,
  ) {
    this.flushTimer = new FlushTimer(
      () => this.flush(),
      flushMs,
      "journal appends",
      () => this.pending.size > 0,
    );
    const sql = (this.sql = storage.sql);
    keyedTable(
      storage,
      "journal",
      `key TEXT PRIMARY KEY, kind TEXT NOT NULL, body_hash TEXT NOT NULL, state TEXT NOT NULL,
      request_id TEXT NOT NULL, lease_id TEXT, chunk_count INTEGER NOT NULL, text TEXT NOT NULL,
      tokens INTEGER NOT NULL, bytes INTEGER NOT NULL, overflow INTEGER NOT NULL,
      updated_at INTEGER NOT NULL, expires_at INTEGER NOT NULL`,
    );
    sql.exec(`CREATE INDEX IF NOT EXISTS journal_expiry ON journal (expires_at)`);
    // seq: the index of the row's first chunk. The totals columns count only in rows at or past
    // their entry's chunk_count (rows an earlier version wrote are all before it).
    keyedTable(
      storage,
      "journal_chunks",
      `key TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0,
      text_from INTEGER NOT NULL DEFAULT 0, text TEXT NOT NULL DEFAULT '', tokens INTEGER NOT NULL DEFAULT 0,
      bytes INTEGER NOT NULL DEFAULT 0, overflow INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (key, seq)`,
    );
    const [row] = [...sql.exec<{ n: number; b: number | null }>(`SELECT COUNT(*) AS n, SUM(bytes) AS b FROM journal`)];
    const [unfolded] = [
      ...sql.exec<{ b: number | null }>(
        `SELECT SUM(c.bytes) AS b FROM journal_chunks c JOIN journal j ON j.key = c.key WHERE c.seq >= j.chunk_count`,
      ),
    ];
    this.entries = row?.n ?? 0;
    this.bytes = (row?.b ?? 0) + (unfolded?.b ?? 0);
  }

  /**
   * The entry as stored. Its waiting appends are written first: whoever reads an entry (a twin,
   * a replay, a takeover) is answered with nothing a restart could take back, as the reply waits
   * for that write's commit.
   */
  get(key: string, now: number): EntrySnapshot | undefined {
    this.flushKey(key);
    const row = this.row(key);
    if (!row || row.expires_at <= now) return undefined;
    const chunkRows = this.sql.exec<ChunkRow>(`SELECT * FROM journal_chunks WHERE key = ? ORDER BY seq`, key).toArray();
    const chunks = chunkRows.flatMap((c) => JSON.parse(c.data) as string[]);
    const totals = totalsFrom(row, chunkRows);
    return {
      key,
      kind: row.kind,
      state: row.state,
      requestId: row.request_id,
      leaseId: row.lease_id,
      chunks,
      text: totals.text,
      tokens: totals.tokens,
      overflow: totals.overflow,
      bodyHash: row.body_hash,
    };
  }

  /** Starts (or takes over) an entry for a running request; keeps chunks already recorded. */
  begin(key: string, kind: EntryKind, bodyHash: string, requestId: string, leaseId: string, limits: JournalLimits, now: number): void {
    this.flushKey(key);
    this.evict(limits, now);
    const existing = this.row(key);
    if (existing && existing.expires_at > now) {
      this.sql.exec(
        `UPDATE journal SET state = 'running', request_id = ?, lease_id = ?, updated_at = ? WHERE key = ?`,
        requestId,
        leaseId,
        now,
        key,
      );
      return;
    }
    if (existing) this.delete(key);
    this.entries++;
    this.totalsOf.set(key, NO_TOTALS);
    this.sql.exec(
      `INSERT INTO journal (key, kind, body_hash, state, request_id, lease_id, chunk_count, text, tokens, bytes, overflow, updated_at, expires_at)
       VALUES (?, ?, ?, 'running', ?, ?, 0, '', 0, 0, 0, ?, ?)`,
      key,
      kind,
      bodyHash,
      requestId,
      leaseId,
      now,
      now + limits.ttlMs,
    );
  }

  /**
   * Appends chunks starting at event index `progress.from`. Chunks the entry already holds are
   * skipped, so a checkpoint sent twice is harmless; chunks after a gap are refused. Returns how many
   * chunks the entry holds afterwards (written or waiting), or null when it is not this lease's.
   */
  append(key: string, leaseId: string, progress: Checkpoint, limits: JournalLimits, now: number): number | null {
    const row = this.row(key);
    if (!row || row.lease_id !== leaseId) return null;
    const stored = this.totals(row);
    const waiting = this.pending.get(key) ?? {
      leaseId,
      chunks: [],
      bytes: 0,
      text: stored.text,
      tokens: stored.tokens,
      overflow: stored.overflow,
      updatedAt: now,
    };
    const count = stored.count + waiting.chunks.length;
    const fresh = progress.chunks.slice(count - progress.from);
    if (progress.from > count || fresh.length === 0) return count;
    const size = fresh.reduce((n, c) => n + c.length, 0);
    if (waiting.overflow || stored.bytes + waiting.bytes + size > limits.maxEntryBytes) waiting.overflow = true;
    else {
      waiting.chunks.push(...fresh);
      waiting.bytes += size;
      this.bytes += size;
    }
    waiting.text = progress.text;
    waiting.tokens = progress.tokens;
    waiting.updatedAt = now;
    this.pending.set(key, waiting);
    this.flushTimer.schedule();
    return stored.count + waiting.chunks.length;
  }

  /** Chunks of the lease's run were lost or refused: the entry can no longer be replayed whole. */
  markIncomplete(key: string, leaseId: string): void {
    this.flushKey(key);
    this.sql.exec(`UPDATE journal SET overflow = 1 WHERE key = ? AND lease_id = ?`, key, leaseId);
    const totals = this.totalsOf.get(key);
    if (totals) this.totalsOf.set(key, { ...totals, overflow: true });
  }

  /**
   * Resolves once every append made so far is written (its commit then releases the reply), and
   * rejects if the write failed: the caller keeps its chunks and sends them again.
   */
  flushed(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.flushWaiters.push({ resolve, reject }));
  }

  /** Drops waiting appends unwritten (the tenant is deleted); their checkpoint calls fail. */
  discard(): void {
    this.flushTimer.cancel();
    this.pending.clear();
    this.totalsOf.clear();
    for (const w of this.flushWaiters.splice(0)) w.reject(new Error("the tenant was deleted"));
  }

  /** Writes every waiting append, in the one implicit transaction of this turn. */
  flush(): void {
    this.flushTimer.cancel();
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    const keys = [...this.pending.keys()];
    try {
      for (const key of keys) this.flushKey(key);
    } catch (err) {
      for (const w of waiters) w.reject(err);
      throw err;
    }
    for (const w of waiters) w.resolve();
    if (keys.length > 0) this.onChanged(keys);
  }

  /** Ends the lease's run of the entry; its followers are told. */
  finish(key: string, leaseId: string, state: EntryState, now: number): void {
    this.flushKey(key);
    const row = this.row(key);
    if (row?.lease_id === leaseId) {
      this.fold(row, this.totals(row), `state = ?, lease_id = NULL, updated_at = ?`, state, now);
      this.totalsOf.delete(key);
    }
    this.onChanged([key]);
  }

  stats(): { entries: number; bytes: number } {
    return { entries: this.entries, bytes: this.bytes };
  }

  /**
   * Drops expired entries (a sweep at most once a second), then the least recently updated
   * finished ones while over a limit. Checking the limits is free: the totals live in memory.
   */
  evict(limits: JournalLimits, now: number): void {
    if (now - this.expiredSweepAt >= 1_000) {
      this.expiredSweepAt = now;
      for (const r of [...this.sql.exec<{ key: string }>(`SELECT key FROM journal WHERE expires_at <= ?`, now)]) this.delete(r.key);
    }
    if (this.entries < limits.maxEntries && this.bytes < limits.maxBytes) return;
    for (const r of [
      ...this.sql.exec<{ key: string }>(`SELECT key FROM journal WHERE state != 'running' ORDER BY updated_at LIMIT 1000`),
    ]) {
      if (this.entries < limits.maxEntries && this.bytes < limits.maxBytes) break;
      this.delete(r.key);
    }
  }

  private row(key: string): EntryRow | undefined {
    return [...this.sql.exec<EntryRow>(`SELECT * FROM journal WHERE key = ?`, key)][0];
  }

  /** Writes the appends waiting for one entry (none are kept for an entry gone or taken over). */
  private flushKey(key: string): void {
    const waiting = this.pending.get(key);
    if (!waiting) return;
    const row = this.row(key);
    if (!row || row.lease_id !== waiting.leaseId) {
      this.pending.delete(key);
      this.bytes -= waiting.bytes;
      return;
    }
    const stored = this.totals(row);
    const change = totalsChange(stored, waiting, waiting.chunks.length, waiting.bytes);
    const after = addChange(stored, change);
    if (waiting.chunks.length > 0)
      this.sql.exec(
        `INSERT INTO journal_chunks (key, seq, data, n, text_from, text, tokens, bytes, overflow) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        key,
        stored.count,
        JSON.stringify(waiting.chunks),
        change.n,
        change.text_from,
        change.text,
        change.tokens,
        change.bytes,
        change.overflow,
      );
    else this.fold(row, after, `updated_at = ?`, waiting.updatedAt);
    this.totalsOf.set(key, after);
    this.pending.delete(key);
  }

  /** A running entry's totals as stored: its row's, and what its chunk rows since add. */
  private totals(row: EntryRow): EntryTotals {
    const known = this.totalsOf.get(row.key);
    if (known) return known;
    const totals = totalsFrom(
      row,
      this.sql.exec<ChunkRow>(`SELECT * FROM journal_chunks WHERE key = ? AND seq >= ? ORDER BY seq`, row.key, row.chunk_count).toArray(),
    );
    this.totalsOf.set(row.key, totals);
    return totals;
  }

  /** Writes the totals into the entry's row (its chunk rows so far then add nothing), with more of its columns. */
  private fold(row: EntryRow, totals: EntryTotals, set: string, ...values: SqlStorageValue[]): void {
    this.sql.exec(
      `UPDATE journal SET chunk_count = ?, text = ?, tokens = ?, bytes = ?, overflow = ?, ${set} WHERE key = ?`,
      totals.count,
      totals.text,
      totals.tokens,
      totals.bytes,
      totals.overflow ? 1 : 0,
      ...values,
      row.key,
    );
  }

  private delete(key: string): void {
    const row = this.row(key);
    const bytes = row ? this.totals(row).bytes : 0;
    const waiting = this.pending.get(key);
    this.pending.delete(key);
    this.totalsOf.delete(key);
    this.sql.exec(`DELETE FROM journal_chunks WHERE key = ?`, key);
    this.sql.exec(`DELETE FROM journal WHERE key = ?`, key);
    this.entries--;
    this.bytes -= bytes + (waiting?.bytes ?? 0);
  }
}
