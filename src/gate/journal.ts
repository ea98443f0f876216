// The replay journal: one entry per Idempotency-Key (or semantic key) of a tenant, holding the
// request's body hash, its state and the chunks relayed so far. It lets a finished request be
// replayed, a twin join the live generation, and a reconnect or retry carry on from the last
// checkpoint. Bounded by age, entry count, total bytes and bytes per entry.
// Works on the Durable Object's SQLite storage (synchronous `sql.exec`), nothing else.

export type EntryState = "running" | "complete" | "partial" | "failed" | "abandoned";
export type EntryKind = "idempotency" | "semantic";

export interface JournalLimits {
  ttlMs: number;
  maxEntries: number;
  maxBytes: number;
  maxEntryBytes: number;
}

export interface EntrySnapshot {
  key: string;
  kind: EntryKind;
  state: EntryState;
  requestId: string;
  leaseId: string | null;
  /** Framed client chunks (JSON), in event order: chunk i has SSE id i + 1. */
  chunks: string[];
  /** Text delivered so far, for a continuation. */
  text: string;
  tokens: number;
  /** Chunks stopped being recorded (entry over maxEntryBytes): it cannot be replayed. */
  overflow: boolean;
  bodyHash: string;
}

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

export class ReplayJournal {
  // Totals kept in memory (read once from storage), so checking the limits costs nothing per request.
  private entries = 0;
  private bytes = 0;
  private expiredSweepAt = 0;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS journal (
      key TEXT PRIMARY KEY, kind TEXT NOT NULL, body_hash TEXT NOT NULL, state TEXT NOT NULL,
      request_id TEXT NOT NULL, lease_id TEXT, chunk_count INTEGER NOT NULL, text TEXT NOT NULL,
      tokens INTEGER NOT NULL, bytes INTEGER NOT NULL, overflow INTEGER NOT NULL,
      updated_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)`);
    sql.exec(`CREATE INDEX IF NOT EXISTS journal_expiry ON journal (expires_at)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS journal_chunks (key TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (key, seq))`);
    const [row] = [...sql.exec<{ n: number; b: number | null }>(`SELECT COUNT(*) AS n, SUM(bytes) AS b FROM journal`)];
    this.entries = row?.n ?? 0;
    this.bytes = row?.b ?? 0;
  }

  get(key: string, now: number): EntrySnapshot | undefined {
    const row = this.row(key);
    if (!row || row.expires_at <= now) return undefined;
    const chunks: string[] = [];
    for (const c of this.sql.exec<{ data: string }>(`SELECT data FROM journal_chunks WHERE key = ? ORDER BY seq`, key)) chunks.push(...(JSON.parse(c.data) as string[]));
    return {
      key,
      kind: row.kind,
      state: row.state,
      requestId: row.request_id,
      leaseId: row.lease_id,
      chunks,
      text: row.text,
      tokens: row.tokens,
      overflow: row.overflow === 1,
      bodyHash: row.body_hash,
    };
  }

  /** Starts (or takes over) an entry for a running request; keeps chunks already recorded. */
  begin(key: string, kind: EntryKind, bodyHash: string, requestId: string, leaseId: string, limits: JournalLimits, now: number): void {
    this.evict(limits, now);
    const existing = this.row(key);
    if (existing && existing.expires_at > now) {
      this.sql.exec(`UPDATE journal SET state = 'running', request_id = ?, lease_id = ?, updated_at = ? WHERE key = ?`, requestId, leaseId, now, key);
      return;
    }
    if (existing) this.delete(key, existing.bytes);
    this.entries++;
    this.sql.exec(
      `INSERT INTO journal (key, kind, body_hash, state, request_id, lease_id, chunk_count, text, tokens, bytes, overflow, updated_at, expires_at)
       VALUES (?, ?, ?, 'running', ?, ?, 0, '', 0, 0, 0, ?, ?)`,
      key, kind, bodyHash, requestId, leaseId, now, now + limits.ttlMs,
    );
  }

  /**
   * Appends chunks starting at event index `from`. Chunks the entry already holds are skipped, so
   * a checkpoint sent twice is harmless. Returns whether anything new was recorded.
   */
  append(key: string, leaseId: string, from: number, chunks: string[], text: string, tokens: number, limits: JournalLimits, now: number): boolean {
    const row = this.row(key);
    if (!row || row.lease_id !== leaseId || from > row.chunk_count) return false;
    const fresh = chunks.slice(row.chunk_count - from);
    if (fresh.length === 0) return false;
    const size = fresh.reduce((n, c) => n + c.length, 0);
    if (row.overflow === 1 || row.bytes + size > limits.maxEntryBytes) {
      this.sql.exec(`UPDATE journal SET overflow = 1, text = ?, tokens = ?, updated_at = ? WHERE key = ?`, text, tokens, now, key);
      return true;
    }
    this.sql.exec(`INSERT INTO journal_chunks (key, seq, data) VALUES (?, ?, ?)`, key, row.chunk_count, JSON.stringify(fresh));
    this.sql.exec(
      `UPDATE journal SET chunk_count = ?, text = ?, tokens = ?, bytes = ?, updated_at = ? WHERE key = ?`,
      row.chunk_count + fresh.length, text, tokens, row.bytes + size, now, key,
    );
    this.bytes += size;
    return true;
  }

  finish(key: string, leaseId: string, state: EntryState, now: number): void {
    this.sql.exec(`UPDATE journal SET state = ?, lease_id = NULL, updated_at = ? WHERE key = ? AND lease_id = ?`, state, now, key, leaseId);
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
      for (const r of [...this.sql.exec<{ key: string; bytes: number }>(`SELECT key, bytes FROM journal WHERE expires_at <= ?`, now)]) this.delete(r.key, r.bytes);
    }
    if (this.entries < limits.maxEntries && this.bytes < limits.maxBytes) return;
    for (const r of [...this.sql.exec<{ key: string; bytes: number }>(`SELECT key, bytes FROM journal WHERE state != 'running' ORDER BY updated_at LIMIT 1000`)]) {
      if (this.entries < limits.maxEntries && this.bytes < limits.maxBytes) break;
      this.delete(r.key, r.bytes);
    }
  }

  private row(key: string): EntryRow | undefined {
    return [...this.sql.exec<EntryRow>(`SELECT * FROM journal WHERE key = ?`, key)][0];
  }

  private delete(key: string, bytes: number): void {
    this.sql.exec(`DELETE FROM journal_chunks WHERE key = ?`, key);
    this.sql.exec(`DELETE FROM journal WHERE key = ?`, key);
    this.entries--;
    this.bytes -= bytes;
  }
}
