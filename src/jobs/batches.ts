// A tenant's batches in D1 (OpenAI's Batch API): the batch, its counts, and each line's result until
// the batch is finalized into its output and error files. Every change of state is a conditional
// UPDATE, so consumers racing on one batch (redeliveries, the last two lines at once) move it once.
//   validating -> in_progress -> finalizing -> completed | expired | cancelled
//   validating | in_progress -> cancelling -> finalizing;  a batch that cannot go on -> failed
//   (or cancelled, from cancelling or a cancelled batch's finalizing)
import type { BatchEndpoint } from "./batch-input";

/** Open (not final) batches a tenant may have at once. */
export const MAX_OPEN_BATCHES = 20;
/** Metadata pairs a batch may carry, and their sizes (as OpenAI's). */
export const MAX_METADATA_PAIRS = 16;

export type BatchStatus = "validating" | "failed" | "in_progress" | "finalizing" | "completed" | "expired" | "cancelling" | "cancelled";
const OPEN: readonly BatchStatus[] = ["validating", "in_progress", "finalizing", "cancelling"];

/** OpenAI's batch object. */
export interface BatchObject {
  id: string;
  object: "batch";
  endpoint: BatchEndpoint;
  errors: { object: "list"; data: Array<{ code: string; message: string; line: number | null; param: string | null }> } | null;
  input_file_id: string;
  completion_window: "24h";
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string> | null;
}

interface BatchRow {
  endpoint: BatchEndpoint;
  id: string;
  status: BatchStatus;
  input_file_id: string;
  output_file_id: string | null;
  error_file_id: string | null;
  metadata: string | null;
  errors: string | null;
  total: number;
  completed: number;
  failed: number;
  created_at: number;
  expires_at: number;
  in_progress_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
}

export const newBatchId = () => `batch_${crypto.randomUUID().replaceAll("-", "")}`;
const seconds = (ms: number) => Math.floor(ms / 1000);

export class BatchStore {
  constructor(
    private readonly db: D1Database,
    readonly tenant: string,
  ) {}

  async openCount(): Promise<number> {
    const marks = OPEN.map(() => "?").join(", ");
    const row = await this.db
      .prepare(`SELECT COUNT(*) AS n FROM batches WHERE tenant = ? AND status IN (${marks})`)
      .bind(this.tenant, ...OPEN)
      .first<{ n: number }>();
    return row?.n ?? 0;
  }

  async create(
    batch: { inputFileId: string; total: number; metadata: Record<string, string> | null; windowMs: number; endpoint?: BatchEndpoint },
    now: number,
  ): Promise<BatchObject> {
    const id = newBatchId();
    await this.db
      .prepare(
        `INSERT INTO batches (id, tenant, status, input_file_id, metadata, total, created_at, expires_at, endpoint) VALUES (?, ?, 'validating', ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        id,
        this.tenant,
        batch.inputFileId,
        batch.metadata && JSON.stringify(batch.metadata),
        batch.total,
        seconds(now),
        seconds(now + batch.windowMs),
        batch.endpoint ?? "/v1/chat/completions",
      )
      .run();
    return (await this.get(id))!;
  }

  async get(id: string): Promise<BatchObject | null> {
    const row = await this.db.prepare(`SELECT * FROM batches WHERE tenant = ? AND id = ?`).bind(this.tenant, id).first<BatchRow>();
    return row && toObject(row);
  }

  /** Newest first, after the batch `after` (a cursor), at most `limit`. */
  async list(limit: number, after?: string): Promise<BatchObject[]> {
    const cursor = after ? await this.get(after) : null;
    const rows = await this.db
      .prepare(
        `SELECT * FROM batches WHERE tenant = ? AND (created_at < ? OR (created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?`,
      )
      .bind(this.tenant, cursor?.created_at ?? Number.MAX_SAFE_INTEGER, cursor?.created_at ?? 0, cursor?.id ?? "", limit)
      .all<BatchRow>();
    return rows.results.map(toObject);
  }

  /** validating -> in_progress (the first lines are queued). */
  async started(id: string, now: number): Promise<void> {
    await this.db
      .prepare(`UPDATE batches SET status = 'in_progress', in_progress_at = ? WHERE tenant = ? AND id = ? AND status = 'validating'`)
      .bind(seconds(now), this.tenant, id)
      .run();
  }

  /** -> cancelling, if the batch is still running; the batch as it is afterwards. */
  async cancel(id: string, now: number): Promise<BatchObject | null> {
    await this.db
      .prepare(
        `UPDATE batches SET status = 'cancelling', cancelling_at = ? WHERE tenant = ? AND id = ? AND status IN ('validating', 'in_progress')`,
      )
      .bind(seconds(now), this.tenant, id)
      .run();
    return this.get(id);
  }

  /**
   * Records a line's result once (a redelivered line's second result is dropped) and recounts.
   * Returns whether this call recorded it.
   */
  async recordLine(batchId: string, line: number, ok: boolean, result: unknown): Promise<boolean> {
    const [inserted] = await this.db.batch([
      this.db
        .prepare(`INSERT OR IGNORE INTO batch_lines (batch_id, line, ok, result) VALUES (?, ?, ?, ?)`)
        .bind(batchId, line, ok ? 1 : 0, JSON.stringify(result)),
      this.db
        .prepare(
          `UPDATE batches SET completed = (SELECT COUNT(*) FROM batch_lines WHERE batch_id = ?1 AND ok = 1),
             failed = (SELECT COUNT(*) FROM batch_lines WHERE batch_id = ?1 AND ok = 0) WHERE id = ?1 AND tenant = ?2`,
        )
        .bind(batchId, this.tenant),
    ]);
    return (inserted?.meta.changes ?? 0) > 0;
  }

  /** Whether the line already has a result. */
  async hasLine(batchId: string, line: number): Promise<boolean> {
    return (await this.db.prepare(`SELECT 1 AS x FROM batch_lines WHERE batch_id = ? AND line = ?`).bind(batchId, line).first()) !== null;
  }

  /** in_progress | cancelling -> finalizing once every line has a result; true for the one call that moved it. */
  async beginFinalizing(id: string, now: number): Promise<boolean> {
    const moved = await this.db
      .prepare(
        `UPDATE batches SET status = 'finalizing', finalizing_at = ? WHERE tenant = ? AND id = ?
         AND status IN ('in_progress', 'cancelling') AND completed + failed >= total`,
      )
      .bind(seconds(now), this.tenant, id)
      .run();
    return moved.meta.changes > 0;
  }

  /** Every line's result, in line order. */
  async lines(batchId: string): Promise<Array<{ line: number; ok: boolean; result: string }>> {
    const rows = await this.db
      .prepare(`SELECT line, ok, result FROM batch_lines WHERE batch_id = ? ORDER BY line`)
      .bind(batchId)
      .all<{ line: number; ok: number; result: string }>();
    return rows.results.map((r) => ({ line: r.line, ok: r.ok === 1, result: r.result }));
  }

  /** finalizing -> its final state, with its files; the lines' rows go (the files hold them now). */
  async finish(
    id: string,
    status: "completed" | "expired" | "cancelled",
    files: { output: string | null; error: string | null },
    now: number,
  ): Promise<void> {
    await this.db.batch([
      this.db
        .prepare(
          `UPDATE batches SET status = ?, ${status}_at = ?, output_file_id = ?, error_file_id = ? WHERE tenant = ? AND id = ? AND status = 'finalizing'`,
        )
        .bind(status, seconds(now), files.output, files.error, this.tenant, id),
      this.db.prepare(`DELETE FROM batch_lines WHERE batch_id = ?`).bind(id),
    ]);
  }

  /**
   * A batch that cannot go on (its input file vanished, a step failed every delivery) ends now, from
   * whatever open state it is in: `cancelled` if it was being cancelled, else `failed`.
   */
  async fail(id: string, error: { code: string; message: string }, now: number): Promise<void> {
    const errors = JSON.stringify({ object: "list", data: [{ ...error, line: null, param: null }] });
    const at = seconds(now);
    await this.db
      .prepare(
        `UPDATE batches SET
           status = CASE WHEN cancelling_at IS NULL THEN 'failed' ELSE 'cancelled' END,
           failed_at = CASE WHEN cancelling_at IS NULL THEN ? ELSE failed_at END,
           cancelled_at = CASE WHEN cancelling_at IS NULL THEN cancelled_at ELSE ? END,
           errors = ?
         WHERE tenant = ? AND id = ? AND status IN ('validating', 'in_progress', 'cancelling', 'finalizing')`,
      )
      .bind(at, at, errors, this.tenant, id)
      .run();
  }

  /** Every batch of the tenant, and its lines (it was deleted). */
  async deleteAll(): Promise<void> {
    await this.db.batch([
      this.db.prepare(`DELETE FROM batch_lines WHERE batch_id IN (SELECT id FROM batches WHERE tenant = ?)`).bind(this.tenant),
      this.db.prepare(`DELETE FROM batches WHERE tenant = ?`).bind(this.tenant),
    ]);
  }
}

function toObject(r: BatchRow): BatchObject {
  return {
    id: r.id,
    object: "batch",
    endpoint: r.endpoint,
    errors: r.errors ? (JSON.parse(r.errors) as BatchObject["errors"]) : null,
    input_file_id: r.input_file_id,
    completion_window: "24h",
    status: r.status,
    output_file_id: r.output_file_id,
    error_file_id: r.error_file_id,
    created_at: r.created_at,
    in_progress_at: r.in_progress_at,
    expires_at: r.expires_at,
    finalizing_at: r.finalizing_at,
    completed_at: r.completed_at,
    failed_at: r.failed_at,
    expired_at: r.expired_at,
    cancelling_at: r.cancelling_at,
    cancelled_at: r.cancelled_at,
    request_counts: { total: r.total, completed: r.completed, failed: r.failed },
    metadata: r.metadata ? (JSON.parse(r.metadata) as Record<string, string>) : null,
  };
}
