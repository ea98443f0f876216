// Dead letters in D1: every request that exhausted its attempts, with each attempt's story.
// Retention is bounded both by age and by count per tenant.
import type { AttemptLogEntry } from "../dispatch/dispatch-input";

export const DEAD_LETTER_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
export const DEAD_LETTER_MAX_PER_TENANT = 1_000;

export interface DeadLetter {
  tenant: string;
  requestId: string;
  model: string;
  status: number;
  code: string;
  message: string;
  partial: boolean;
  attempts: AttemptLogEntry[];
  createdAt: number;
  /** The request's W3C trace id (null for letters written before traces were kept). */
  traceId: string | null;
}

export async function recordDeadLetter(db: D1Database, letter: DeadLetter): Promise<void> {
  await db.batch([
    db
      .prepare(
        `INSERT INTO dead_letters (tenant, request_id, model, status, code, message, partial, attempts, created_at, trace_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        letter.tenant,
        letter.requestId,
        letter.model,
        letter.status,
        letter.code,
        letter.message.slice(0, 2000),
        letter.partial ? 1 : 0,
        JSON.stringify(letter.attempts),
        letter.createdAt,
        letter.traceId,
      ),
    db.prepare(`DELETE FROM dead_letters WHERE created_at < ?`).bind(letter.createdAt - DEAD_LETTER_MAX_AGE_MS),
    db
      .prepare(
        `DELETE FROM dead_letters WHERE tenant = ? AND id <= (SELECT id FROM dead_letters WHERE tenant = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      )
      .bind(letter.tenant, letter.tenant, DEAD_LETTER_MAX_PER_TENANT),
  ]);
}

/** Erases every dead letter of the tenant (it was deleted). */
export async function deleteDeadLetters(db: D1Database, tenant: string): Promise<void> {
  await db.prepare(`DELETE FROM dead_letters WHERE tenant = ?`).bind(tenant).run();
}

export async function listDeadLetters(
  db: D1Database,
  tenant: string,
  limit: number,
  beforeId?: number,
): Promise<Array<DeadLetter & { id: number }>> {
  const rows = await db
    .prepare(
      `SELECT id, tenant, request_id, model, status, code, message, partial, attempts, created_at, trace_id FROM dead_letters
       WHERE tenant = ? AND id < ? ORDER BY id DESC LIMIT ?`,
    )
    .bind(tenant, beforeId ?? Number.MAX_SAFE_INTEGER, limit)
    .all<{
      id: number;
      tenant: string;
      request_id: string;
      model: string;
      status: number;
      code: string;
      message: string;
      partial: number;
      attempts: string;
      created_at: number;
      trace_id: string | null;
    }>();
  return rows.results.map((r) => ({
    id: r.id,
    tenant: r.tenant,
    requestId: r.request_id,
    model: r.model,
    status: r.status,
    code: r.code,
    message: r.message,
    partial: r.partial === 1,
    attempts: JSON.parse(r.attempts) as AttemptLogEntry[],
    createdAt: r.created_at,
    traceId: r.trace_id,
  }));
}
