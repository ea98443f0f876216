// Async generations (`Prefer: respond-async`, and dead letters run again): the request and, once it
// ended, its answer, in D1. Kept GENERATION_TTL_MS; at most MAX_OPEN_GENERATIONS waiting or running
// per tenant.
//   queued -> running -> completed | failed;  queued | running -> cancelled
import type { ChatRequest } from "../config/chat-request";

export const GENERATION_TTL_MS = 7 * 86_400_000;
export const MAX_OPEN_GENERATIONS = 1_000;

export type GenerationStatus = "queued" | "running" | "completed" | "failed" | "cancelled";

/** What GET /v1/generations/{id} answers. */
export interface GenerationObject {
  id: string;
  object: "generation";
  status: GenerationStatus;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  /** Once ended: the HTTP status and body the request would have been answered with. */
  response: { status_code: number; body: unknown } | null;
}

interface GenerationRow {
  id: string;
  status: GenerationStatus;
  request: string;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  result: string | null;
  webhook: string | null;
}

/** Completed, failed or cancelled: it has its answer, and runs no more. */
export const generationEnded = (g: Pick<GenerationObject, "status">) => g.status !== "queued" && g.status !== "running";

export const newGenerationId = () => `gen_${crypto.randomUUID().replaceAll("-", "")}`;

/** What a cancelled generation answers (GET /v1/generations/{id}). */
export const CANCELLED_ANSWER = {
  status_code: 409,
  body: { error: { message: "The generation was cancelled.", type: "invalid_request_error", code: "generation_cancelled" } },
};
const seconds = (ms: number) => Math.floor(ms / 1000);

export class GenerationStore {
  constructor(
    private readonly db: D1Database,
    readonly tenant: string,
  ) {}

  async openCount(): Promise<number> {
    const row = await this.db
      .prepare(`SELECT COUNT(*) AS n FROM generations WHERE tenant = ? AND status IN ('queued', 'running')`)
      .bind(this.tenant)
      .first<{ n: number }>();
    return row?.n ?? 0;
  }

  /**
   * A queued generation of `request` (old ones of the tenant are dropped first). `webhook`: the one
   * its request named ("none" for none); absent, the tenant's default when it ends.
   */
  async create(request: ChatRequest, now: number, webhook?: string, id = newGenerationId()): Promise<GenerationObject> {
    await this.db.batch([
      this.db.prepare(`DELETE FROM generations WHERE tenant = ? AND created_at < ?`).bind(this.tenant, seconds(now - GENERATION_TTL_MS)),
      this.db
        .prepare(`INSERT INTO generations (id, tenant, status, request, created_at, webhook) VALUES (?, ?, 'queued', ?, ?, ?)`)
        .bind(id, this.tenant, JSON.stringify(request), seconds(now), webhook ?? null),
    ]);
    return (await this.get(id))!;
  }

  async get(id: string): Promise<GenerationObject | null> {
    const row = await this.row(id);
    return row && toObject(row);
  }

  /** The generation, the request it runs and the webhook its request named, from one read. */
  async withRequest(id: string): Promise<{ generation: GenerationObject; request: ChatRequest; webhook: string | null } | null> {
    const row = await this.row(id);
    return row && { generation: toObject(row), request: JSON.parse(row.request) as ChatRequest, webhook: row.webhook };
  }

  /** queued -> running; false when it was no longer queued (cancelled meanwhile). */
  async started(id: string, now: number): Promise<boolean> {
    const moved = await this.db
      .prepare(`UPDATE generations SET status = 'running', started_at = ? WHERE tenant = ? AND id = ? AND status = 'queued'`)
      .bind(seconds(now), this.tenant, id)
      .run();
    return moved.meta.changes > 0;
  }

  /** queued | running -> cancelled; false when it had ended already. */
  async cancel(id: string, now: number): Promise<boolean> {
    const moved = await this.db
      .prepare(
        `UPDATE generations SET status = 'cancelled', completed_at = ?, result = ? WHERE tenant = ? AND id = ? AND status IN ('queued', 'running')`,
      )
      .bind(seconds(now), JSON.stringify(CANCELLED_ANSWER), this.tenant, id)
      .run();
    return moved.meta.changes > 0;
  }

  /** -> completed (a 2xx answer) or failed, with the answer. */
  async finish(id: string, response: { status_code: number; body: unknown }, now: number): Promise<void> {
    const status = response.status_code >= 200 && response.status_code < 300 ? "completed" : "failed";
    await this.db
      .prepare(
        `UPDATE generations SET status = ?, completed_at = ?, result = ? WHERE tenant = ? AND id = ? AND status IN ('queued', 'running')`,
      )
      .bind(status, seconds(now), JSON.stringify(response), this.tenant, id)
      .run();
  }

  async deleteAll(): Promise<void> {
    await this.db.prepare(`DELETE FROM generations WHERE tenant = ?`).bind(this.tenant).run();
  }

  private row(id: string): Promise<GenerationRow | null> {
    return this.db.prepare(`SELECT * FROM generations WHERE tenant = ? AND id = ?`).bind(this.tenant, id).first<GenerationRow>();
  }
}

function toObject(r: GenerationRow): GenerationObject {
  return {
    id: r.id,
    object: "generation",
    status: r.status,
    created_at: r.created_at,
    started_at: r.started_at,
    completed_at: r.completed_at,
    response: r.result ? (JSON.parse(r.result) as GenerationObject["response"]) : null,
  };
}
