// Alert messages between the gate's evaluation and the alert queue, in SQLite: a message is
// stored in the same turn the tracker's new state is, and deleted only once the queue took it,
// so a failed send or a restart delays a message instead of losing it. Bounded by
// MAX_OUTBOX_MESSAGES (a queue that refuses messages for hours): past it the oldest are dropped,
// with an error log naming how many.
import { ALERT_EVALUATE_MS, type AlertMessage } from "./core/gate-alerts";
import type { SavedAlerts } from "./core/alert-tracker";
import type { GateCore } from "./core/gate-core";
import type { AlarmClocks } from "./alarm-clocks";
import { logError } from "../log";

export const MAX_OUTBOX_MESSAGES = 500;
/** Messages per send: the queue's sendBatch takes at most 100. */
const SEND_BATCH = 100;

export class AlertOutbox {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS alert_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL)`);
  }

  /** The alert tracker's state, stored in the same turn as the messages it produced. */
  saveState(saved: SavedAlerts): void {
    this.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('alerts', ?)`, JSON.stringify(saved));
  }

  get size(): number {
    return this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM alert_outbox`).one().n;
  }

  add(messages: readonly AlertMessage[], tenant: string): void {
    for (const m of messages) this.sql.exec(`INSERT INTO alert_outbox (message) VALUES (?)`, JSON.stringify(m));
    const over = this.size - MAX_OUTBOX_MESSAGES;
    if (over > 0) {
      this.sql.exec(`DELETE FROM alert_outbox WHERE id IN (SELECT id FROM alert_outbox ORDER BY id LIMIT ?)`, over);
      logError(undefined, "alert messages dropped: the alert queue has refused them too long", `${over} dropped`, { tenant });
    }
  }

  /** Sends what is stored, oldest first; false when the queue refused (the messages stay). */
  async send(queue: Queue<AlertMessage>, tenant: string | null): Promise<boolean> {
    for (;;) {
      const rows = this.sql
        .exec<{ id: number; message: string }>(`SELECT id, message FROM alert_outbox ORDER BY id LIMIT ?`, SEND_BATCH)
        .toArray();
      if (rows.length === 0) return true;
      try {
        await queue.sendBatch(rows.map((r) => ({ body: JSON.parse(r.message) as AlertMessage, contentType: "json" as const })));
      } catch (err) {
        logError(undefined, "alert messages not queued; will retry", err, { tenant, messages: rows.length });
        return false;
      }
      this.sql.exec(`DELETE FROM alert_outbox WHERE id <= ?`, rows[rows.length - 1]!.id);
    }
  }
}

/** The gate's alert evaluations: run from its alarm ("alerts" clock), their messages through the outbox. */
export class AlertRuns {
  constructor(
    private readonly outbox: AlertOutbox,
    private readonly clocks: AlarmClocks,
    private readonly queue: Queue<AlertMessage>,
  ) {}

  /** Messages stored and not yet taken by the queue. */
  get unsent(): number {
    return this.outbox.size;
  }

  /** Runs the rules; what changed goes to the outbox (stored with the tracker's state), then to the alert queue. */
  async evaluate(core: GateCore, tenant: string | null, shard: number, now: number): Promise<void> {
    let next: number | undefined;
    if (tenant !== null && core.config) {
      const evaluated = core.alerts.evaluate(tenant, shard, () => crypto.randomUUID(), now);
      this.outbox.saveState(evaluated.saved);
      this.outbox.add(evaluated.messages, tenant);
      next = evaluated.next;
    }
    // Messages a failed send left behind are tried again at the next evaluation.
    if (!(await this.outbox.send(this.queue, tenant))) next = Math.min(next ?? Infinity, now + ALERT_EVALUATE_MS);
    this.clocks.set("alerts", next);
  }

  /** The figures changed and the tenant has alert rules: an evaluation within ALERT_EVALUATE_MS, or at once. */
  wanted(now = false): void {
    const at = Date.now() + (now ? 0 : ALERT_EVALUATE_MS);
    const set = this.clocks.get("alerts");
    if (set === undefined || set > at) this.clocks.set("alerts", at);
  }
}
