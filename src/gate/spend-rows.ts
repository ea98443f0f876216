// The spend ledger's rows and the budgets' spend, in the gate's SQLite. A row adds up one day's spend
// of one API key on one model alias and backend, of one kind and cause (core/spend-ledger.ts): the
// ledger grows with the combinations in use, not with requests. Days older than
// LEDGER_RETENTION_DAYS are dropped, and past MAX_LEDGER_ROWS the oldest days go first.
// Written behind: entries add up in memory and are written once a SPEND_FLUSH_MS, in one
// transaction (a write per attempt cost more CPU than the rest of the request's bookkeeping), so a
// gate that crashes loses at most that long of spend.
import type { SpendEntry } from "./core/spend-ledger";
import type { BudgetSpent } from "./core/spend-budget";
import { FlushTimer } from "./flush-timer";
import { keyedTable } from "./keyed-table";

export const LEDGER_RETENTION_DAYS = 400;
export const MAX_LEDGER_ROWS = 200_000;
export const SPEND_FLUSH_MS = 1_000;

const rowKey = (e: SpendEntry) => JSON.stringify([e.day, e.keyId, e.alias, e.backendId, e.kind, e.cause]);

export class SpendRows {
  private prunedOn = "";
  /** Ledger rows' additions not yet written, by row (at most one per combination in use). */
  private readonly pending = new Map<string, SpendEntry>();
  /** Budgets' spend not yet written, by budget id. */
  private readonly budgetsPending = new Map<string, BudgetSpent>();
  private readonly timer = new FlushTimer(
    () => this.flush(),
    SPEND_FLUSH_MS,
    "spend ledger",
    () => this.dirty,
  );
  private readonly sql: SqlStorage;

  constructor(private readonly storage: DurableObjectStorage) {
    this.sql = storage.sql;
    keyedTable(
      storage,
      "spend",
      `day TEXT NOT NULL, key_id TEXT NOT NULL, alias TEXT NOT NULL, backend TEXT NOT NULL, kind TEXT NOT NULL, cause TEXT NOT NULL,
      usd REAL NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
      attempts INTEGER NOT NULL, estimated INTEGER NOT NULL,
      PRIMARY KEY (day, key_id, alias, backend, kind, cause)`,
    );
    keyedTable(storage, "budgets", "id TEXT PRIMARY KEY, period_start INTEGER NOT NULL, usd REAL NOT NULL, tokens INTEGER NOT NULL");
  }

  record(entries: SpendEntry[]): void {
    for (const e of entries) {
      const key = rowKey(e);
      const sum = this.pending.get(key);
      if (!sum) this.pending.set(key, { ...e });
      else {
        sum.usd += e.usd;
        sum.inputTokens += e.inputTokens;
        sum.outputTokens += e.outputTokens;
        sum.cachedTokens += e.cachedTokens;
        sum.attempts += e.attempts;
        sum.estimated += e.estimated;
      }
    }
    if (entries.length > 0) this.timer.schedule();
  }

  saveBudget(id: string, spent: BudgetSpent): void {
    this.budgetsPending.set(id, { ...spent });
    this.timer.schedule();
  }

  /** Writes what is pending, in one transaction. */
  flush(): void {
    if (!this.dirty) return;
    this.timer.cancel();
    const entries = [...this.pending.values()];
    this.storage.transactionSync(() => {
      for (const e of entries) this.write(e);
      for (const [id, spent] of this.budgetsPending)
        this.sql.exec(`INSERT OR REPLACE INTO budgets VALUES (?, ?, ?, ?)`, id, spent.periodStart, spent.usd, spent.tokens);
    });
    this.pending.clear();
    this.budgetsPending.clear();
    const day = entries.at(-1)?.day;
    if (day !== undefined && day !== this.prunedOn) this.prune(day);
  }

  /** Drops what is pending (the tenant is being deleted). */
  discard(): void {
    this.timer.cancel();
    this.pending.clear();
    this.budgetsPending.clear();
  }

  private get dirty(): boolean {
    return this.pending.size > 0 || this.budgetsPending.size > 0;
  }

  private write(e: SpendEntry): void {
    this.sql.exec(
      `INSERT INTO spend VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (day, key_id, alias, backend, kind, cause) DO UPDATE SET
           usd = usd + excluded.usd, input_tokens = input_tokens + excluded.input_tokens,
           output_tokens = output_tokens + excluded.output_tokens, cached_tokens = cached_tokens + excluded.cached_tokens,
           attempts = attempts + excluded.attempts, estimated = estimated + excluded.estimated`,
      e.day,
      e.keyId,
      e.alias,
      e.backendId,
      e.kind,
      e.cause,
      e.usd,
      e.inputTokens,
      e.outputTokens,
      e.cachedTokens,
      e.attempts,
      e.estimated,
    );
  }

  /** The rows of days `from` to `to` (YYYY-MM-DD, both included). */
  rows(from: string, to: string): SpendEntry[] {
    this.flush();
    return this.sql
      .exec<{
        day: string;
        key_id: string;
        alias: string;
        backend: string;
        kind: SpendEntry["kind"];
        cause: SpendEntry["cause"];
        usd: number;
        input_tokens: number;
        output_tokens: number;
        cached_tokens: number;
        attempts: number;
        estimated: number;
      }>(`SELECT * FROM spend WHERE day >= ? AND day <= ?`, from, to)
      .toArray()
      .map((r) => ({
        day: r.day,
        keyId: r.key_id,
        alias: r.alias,
        backendId: r.backend,
        kind: r.kind,
        cause: r.cause,
        usd: r.usd,
        inputTokens: r.input_tokens,
        outputTokens: r.output_tokens,
        cachedTokens: r.cached_tokens,
        attempts: r.attempts,
        estimated: r.estimated,
      }));
  }

  budgets(): Array<[string, BudgetSpent]> {
    return this.sql
      .exec<{ id: string; period_start: number; usd: number; tokens: number }>(`SELECT * FROM budgets`)
      .toArray()
      .map((r) => [r.id, { periodStart: r.period_start, usd: r.usd, tokens: r.tokens }]);
  }

  /** Drops days past retention, then the oldest days while the ledger holds more than MAX_LEDGER_ROWS rows. */
  private prune(today: string): void {
    this.prunedOn = today;
    const oldest = new Date(Date.parse(today) - LEDGER_RETENTION_DAYS * 86_400_000).toISOString().slice(0, 10);
    this.sql.exec(`DELETE FROM spend WHERE day < ?`, oldest);
    for (;;) {
      const count = this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM spend`).one().n;
      const first = this.sql.exec<{ day: string }>(`SELECT MIN(day) AS day FROM spend`).one().day;
      if (count <= MAX_LEDGER_ROWS || first === today) return;
      this.sql.exec(`DELETE FROM spend WHERE day = ?`, first);
    }
  }
}
