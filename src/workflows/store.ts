// Workflows in D1 (docs/workflows.md, "Workflows"): each tenant's definitions by version, and its runs with
// their steps and events. Bounded: MAX_WORKFLOWS names a tenant, MAX_VERSIONS kept per name (a
// version a run still uses stays), runs kept RUN_TTL_MS, a step's output at most MAX_OUTPUT_BYTES.
import type { WorkflowDefinition } from "./core/definition";
import type { RunStatus, StepStatus } from "./core/run-state";

export const MAX_WORKFLOWS = 100;
export const MAX_VERSIONS = 20;
export const RUN_TTL_MS = 7 * 86_400_000;
export const MAX_OUTPUT_BYTES = 64 * 1024;
export const MAX_INPUT_BYTES = 64 * 1024;

export interface StoredDefinition {
  name: string;
  version: number;
  definition: WorkflowDefinition;
  created_at: number;
}

export interface StepRecord {
  id: string;
  status: StepStatus;
  attempts: number;
  backend: string | null;
  started_at: number | null;
  ended_at: number | null;
  tokens: number;
  output: unknown;
  error: string | null;
  /** A map step's items: how many, and how many succeeded. */
  items: { total: number; succeeded: number } | null;
}

/** What GET /v1/workflows/runs/{id} answers. */
export interface RunObject {
  id: string;
  object: "workflow.run";
  workflow: string;
  version: number;
  status: RunStatus;
  input: unknown;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  error: string | null;
  steps: StepRecord[];
}

export interface RunEvent {
  seq: number;
  event: Record<string, unknown>;
}

interface RunRow {
  id: string;
  name: string;
  version: number;
  status: RunStatus;
  input: string;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  error: string | null;
}

const OPEN = `('queued', 'running')`;

export class WorkflowStore {
  constructor(
    private readonly db: D1Database,
    readonly tenant: string,
  ) {}

  // ---- definitions -----------------------------------------------------------------------------

  /** Stores a new version of `name`; null when the tenant has MAX_WORKFLOWS other names. */
  async putDefinition(name: string, definition: WorkflowDefinition, now: number): Promise<StoredDefinition | null> {
    const names = await this.db
      .prepare(`SELECT COUNT(DISTINCT name) AS n FROM workflow_definitions WHERE tenant = ? AND deleted_at IS NULL AND name != ?`)
      .bind(this.tenant, name)
      .first<{ n: number }>();
    if ((names?.n ?? 0) >= MAX_WORKFLOWS) return null;
    const last = await this.db
      .prepare(`SELECT MAX(version) AS v FROM workflow_definitions WHERE tenant = ? AND name = ?`)
      .bind(this.tenant, name)
      .first<{ v: number | null }>();
    const version = (last?.v ?? 0) + 1;
    await this.db.batch([
      this.db
        .prepare(`INSERT INTO workflow_definitions (tenant, name, version, definition, created_at) VALUES (?, ?, ?, ?, ?)`)
        .bind(this.tenant, name, version, JSON.stringify(definition), now),
      // A new version revives a deleted name; old versions no open run uses are dropped.
      this.db.prepare(`UPDATE workflow_definitions SET deleted_at = NULL WHERE tenant = ? AND name = ?`).bind(this.tenant, name),
      this.db
        .prepare(
          `DELETE FROM workflow_definitions WHERE tenant = ? AND name = ? AND version <= ?
             AND version NOT IN (SELECT version FROM workflow_runs WHERE tenant = ? AND name = ? AND status IN ${OPEN})`,
        )
        .bind(this.tenant, name, version - MAX_VERSIONS, this.tenant, name),
    ]);
    return { name, version, definition, created_at: now };
  }

  /** The newest version of `name` (or the given one, deleted or not: a run reads what it started with). */
  async definition(name: string, version?: number): Promise<StoredDefinition | null> {
    const row = await (version === undefined
      ? this.db
          .prepare(`SELECT * FROM workflow_definitions WHERE tenant = ? AND name = ? AND deleted_at IS NULL ORDER BY version DESC LIMIT 1`)
          .bind(this.tenant, name)
      : this.db.prepare(`SELECT * FROM workflow_definitions WHERE tenant = ? AND name = ? AND version = ?`).bind(this.tenant, name, version)
    ).first<{ name: string; version: number; definition: string; created_at: number }>();
    return row && { name: row.name, version: row.version, definition: JSON.parse(row.definition), created_at: row.created_at };
  }

  /** Deletes `name` for new runs; runs already started keep their version. False when there was none. */
  async deleteDefinition(name: string, now: number): Promise<boolean> {
    const result = await this.db
      .prepare(`UPDATE workflow_definitions SET deleted_at = ? WHERE tenant = ? AND name = ? AND deleted_at IS NULL`)
      .bind(now, this.tenant, name)
      .run();
    return result.meta.changes > 0;
  }

  // ---- runs ------------------------------------------------------------------------------------

  /** Ids of the runs queued or running (to stop them when the tenant is deleted). */
  async openRunIds(): Promise<string[]> {
    const rows = await this.db
      .prepare(`SELECT id FROM workflow_runs WHERE tenant = ? AND status IN ${OPEN}`)
      .bind(this.tenant)
      .all<{ id: string }>();
    return rows.results.map((r) => r.id);
  }

  async openRuns(): Promise<number> {
    const row = await this.db
      .prepare(`SELECT COUNT(*) AS n FROM workflow_runs WHERE tenant = ? AND status IN ${OPEN}`)
      .bind(this.tenant)
      .first<{ n: number }>();
    return row?.n ?? 0;
  }

  /** A queued run; null when `key` names a run already (its id is then found with runByKey). */
  async createRun(
    run: { id: string; name: string; version: number; input: unknown; idempotencyKey?: string },
    now: number,
  ): Promise<boolean> {
    await this.dropExpired(now);
    const result = await this.db
      .prepare(
        `INSERT OR IGNORE INTO workflow_runs (id, tenant, name, version, status, input, idempotency_key, created_at)
         VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)`,
      )
      .bind(run.id, this.tenant, run.name, run.version, JSON.stringify(run.input ?? null), run.idempotencyKey ?? null, now)
      .run();
    return result.meta.changes > 0;
  }

  async runIdByKey(key: string): Promise<string | null> {
    const row = await this.db
      .prepare(`SELECT id FROM workflow_runs WHERE tenant = ? AND idempotency_key = ?`)
      .bind(this.tenant, key)
      .first<{ id: string }>();
    return row?.id ?? null;
  }

  async run(id: string): Promise<RunObject | null> {
    const [row, steps] = await Promise.all([
      this.db.prepare(`SELECT * FROM workflow_runs WHERE tenant = ? AND id = ?`).bind(this.tenant, id).first<RunRow>(),
      this.db.prepare(`SELECT * FROM workflow_steps WHERE run_id = ? ORDER BY rowid`).bind(id).all<Record<string, any>>(),
    ]);
    return row && { ...toRun(row), steps: steps.results.map(toStep) };
  }

  /** The run's status alone (null: no such run of the tenant): what a follower polls. */
  async runStatus(id: string): Promise<RunStatus | null> {
    const row = await this.db
      .prepare(`SELECT status FROM workflow_runs WHERE tenant = ? AND id = ?`)
      .bind(this.tenant, id)
      .first<{ status: RunStatus }>();
    return row?.status ?? null;
  }

  /** Newest first, `limit` after the run `after` (its id), without steps. */
  async runs(limit: number, after?: string): Promise<{ runs: Omit<RunObject, "steps">[]; more: boolean }> {
    const cursor = after
      ? await this.db
          .prepare(`SELECT created_at, id FROM workflow_runs WHERE tenant = ? AND id = ?`)
          .bind(this.tenant, after)
          .first<RunRow>()
      : null;
    const rows = await (cursor
      ? this.db
          .prepare(
            `SELECT * FROM workflow_runs WHERE tenant = ? AND (created_at < ? OR (created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?`,
          )
          .bind(this.tenant, cursor.created_at, cursor.created_at, cursor.id, limit + 1)
      : this.db
          .prepare(`SELECT * FROM workflow_runs WHERE tenant = ? ORDER BY created_at DESC, id DESC LIMIT ?`)
          .bind(this.tenant, limit + 1)
    ).all<RunRow>();
    return { runs: rows.results.slice(0, limit).map(toRun), more: rows.results.length > limit };
  }

  /** Moves an open run to `status` (an ended run stays as it ended). */
  async setRunStatus(id: string, status: RunStatus, now: number, error?: string): Promise<boolean> {
    const field = status === "running" ? "started_at" : "ended_at";
    const result = await this.db
      .prepare(
        `UPDATE workflow_runs SET status = ?, ${field} = COALESCE(${field}, ?), error = ? WHERE tenant = ? AND id = ? AND status IN ${OPEN}`,
      )
      .bind(status, now, error ?? null, this.tenant, id)
      .run();
    return result.meta.changes > 0;
  }

  // ---- steps and events ------------------------------------------------------------------------

  /** Writes a step's record (its row is made on first write). */
  async putStep(runId: string, step: Partial<Omit<StepRecord, "id">> & { id: string; status: StepStatus }): Promise<void> {
    const output = step.output === undefined ? null : JSON.stringify(step.output);
    await this.db
      .prepare(
        `INSERT INTO workflow_steps (run_id, step_id, status, attempts, backend, started_at, ended_at, tokens, output, error, items, tenant)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (run_id, step_id) DO UPDATE SET status = ?3, attempts = MAX(attempts, ?4), backend = COALESCE(?5, backend),
           started_at = COALESCE(started_at, ?6), ended_at = COALESCE(?7, ended_at), tokens = MAX(tokens, ?8),
           output = COALESCE(?9, output), error = COALESCE(?10, error), items = COALESCE(?11, items)`,
      )
      .bind(
        runId,
        step.id,
        step.status,
        step.attempts ?? 0,
        step.backend ?? null,
        step.started_at ?? null,
        step.ended_at ?? null,
        step.tokens ?? 0,
        output,
        step.error ?? null,
        step.items ? JSON.stringify(step.items) : null,
        this.tenant,
      )
      .run();
  }

  /** Adds an event once per `key` (a replayed workflow writes it again). */
  async addEvent(runId: string, key: string, event: Record<string, unknown>, now: number): Promise<void> {
    await this.db
      .prepare(`INSERT OR IGNORE INTO workflow_events (tenant, run_id, key, event, at) VALUES (?, ?, ?, ?, ?)`)
      .bind(this.tenant, runId, key, JSON.stringify({ ...event, at: new Date(now).toISOString() }), now)
      .run();
  }

  async events(runId: string, afterSeq: number, limit: number): Promise<RunEvent[]> {
    const rows = await this.db
      .prepare(`SELECT seq, event FROM workflow_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`)
      .bind(runId, afterSeq, limit)
      .all<{ seq: number; event: string }>();
    return rows.results.map((r) => ({ seq: r.seq, event: JSON.parse(r.event) }));
  }

  /** Everything of the tenant's (tenant deletion). */
  async deleteAll(): Promise<void> {
    await this.db.batch(
      ["workflow_events", "workflow_steps", "workflow_runs", "workflow_definitions"].map((table) =>
        this.db.prepare(`DELETE FROM ${table} WHERE tenant = ?`).bind(this.tenant),
      ),
    );
  }

  private async dropExpired(now: number): Promise<void> {
    const old = `SELECT id FROM workflow_runs WHERE tenant = ? AND created_at < ? AND status NOT IN ${OPEN}`;
    const before = now - RUN_TTL_MS;
    await this.db.batch([
      this.db.prepare(`DELETE FROM workflow_events WHERE run_id IN (${old})`).bind(this.tenant, before),
      this.db.prepare(`DELETE FROM workflow_steps WHERE run_id IN (${old})`).bind(this.tenant, before),
      this.db.prepare(`DELETE FROM workflow_runs WHERE tenant = ? AND created_at < ? AND status NOT IN ${OPEN}`).bind(this.tenant, before),
    ]);
  }
}

function toRun(r: RunRow): Omit<RunObject, "steps"> {
  return {
    id: r.id,
    object: "workflow.run",
    workflow: r.name,
    version: r.version,
    status: r.status,
    input: JSON.parse(r.input),
    created_at: r.created_at,
    started_at: r.started_at,
    ended_at: r.ended_at,
    error: r.error,
  };
}

function toStep(r: Record<string, any>): StepRecord {
  return {
    id: r.step_id,
    status: r.status,
    attempts: r.attempts,
    backend: r.backend,
    started_at: r.started_at,
    ended_at: r.ended_at,
    tokens: r.tokens,
    output: r.output === null ? null : JSON.parse(r.output),
    error: r.error,
    items: r.items === null ? null : JSON.parse(r.items),
  };
}
