// Dead letters in D1: every request that exhausted its attempts, with each attempt's story.
// Retention is bounded both by age and by count per tenant.
import type { AttemptLogEntry } from "../dispatch/dispatch-input";
import type { ChatRequest } from "../config/chat-request";

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
  /** The request's body, kept so the letter can be run again (redrive); absent when not kept or too large. */
  request?: ChatRequest;
}

/** A request body larger than this is not kept in its dead letter (it cannot be redriven). */
export const MAX_KEPT_REQUEST_BYTES = 256 * 1024;

export async function recordDeadLetter(db: D1Database, letter: DeadLetter): Promise<void> {
  await db.batch([
    db
      .prepare(
        `INSERT INTO dead_letters (tenant, request_id, model, status, code, message, partial, attempts, created_at, trace_id, request) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
        keptRequest(letter.request),
      ),
    db.prepare(`DELETE FROM dead_letters WHERE created_at < ?`).bind(letter.createdAt - DEAD_LETTER_MAX_AGE_MS),
    db
      .prepare(
        `DELETE FROM dead_letters WHERE tenant = ? AND id <= (SELECT id FROM dead_letters WHERE tenant = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      )
      .bind(letter.tenant, letter.tenant, DEAD_LETTER_MAX_PER_TENANT),
  ]);
}

function keptRequest(request: ChatRequest | undefined): string | null {
  if (request === undefined) return null;
  const text = JSON.stringify(request);
  return new TextEncoder().encode(text).length <= MAX_KEPT_REQUEST_BYTES ? text : null;
}

/** Erases every dead letter of the tenant (it was deleted). */
export async function deleteDeadLetters(db: D1Database, tenant: string): Promise<void> {
  await db.prepare(`DELETE FROM dead_letters WHERE tenant = ?`).bind(tenant).run();
}

/** A dead letter's kept request: null when it was not kept, undefined when the tenant has no such letter. */
export async function deadLetterRequest(db: D1Database, tenant: string, id: number): Promise<ChatRequest | null | undefined> {
  const row = await db
    .prepare(`SELECT request FROM dead_letters WHERE tenant = ? AND id = ?`)
    .bind(tenant, id)
    .first<{ request: string | null }>();
  if (!row) return undefined;
  return row.request === null ? null : (JSON.parse(row.request) as ChatRequest);
}

export interface DeadLetterFilter {
  code?: string;
  /** A backend one of the letter's attempts went to. */
  backend?: string;
  /** Unix ms, inclusive. */
  since?: number;
  until?: number;
}

/** Dead letters matching `filter`, newest first, at most `limit`, with their kept requests (null when not kept). */
export async function deadLettersMatching(
  db: D1Database,
  tenant: string,
  filter: DeadLetterFilter,
  limit: number,
): Promise<Array<{ id: number; request: ChatRequest | null }>> {
  const rows = await db
    .prepare(
      `SELECT id, request FROM dead_letters WHERE tenant = ?1 AND (?2 IS NULL OR code = ?2)
       AND (?3 IS NULL OR EXISTS (SELECT 1 FROM json_each(attempts) WHERE json_extract(value, '$.backendId') = ?3))
       AND created_at >= ?4 AND created_at <= ?5 ORDER BY id DESC LIMIT ?6`,
    )
    .bind(tenant, filter.code ?? null, filter.backend ?? null, filter.since ?? 0, filter.until ?? Number.MAX_SAFE_INTEGER, limit)
    .all<{ id: number; request: string | null }>();
  return rows.results.map((r) => ({ id: r.id, request: r.request === null ? null : (JSON.parse(r.request) as ChatRequest) }));
}

export async function listDeadLetters(
  db: D1Database,
  tenant: string,
  limit: number,
  beforeId?: number,
): Promise<Array<DeadLetter & { id: number; redrivable: boolean }>> {
  const rows = await db
    .prepare(
      `SELECT id, tenant, request_id, model, status, code, message, partial, attempts, created_at, trace_id, request IS NOT NULL AS redrivable FROM dead_letters
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
      redrivable: number;
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
    redrivable: r.redrivable === 1,
  }));
}
