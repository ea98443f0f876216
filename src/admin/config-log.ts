// ConfigLog: one Durable Object per tenant that owns the tenant's config writes. Each accepted
// change gets the next version, is kept with who made it and what it changed (a merge patch from
// the version before), and then goes to KV (where requests read it) and to the tenant's gates, in
// version order: commits run one at a time, so KV and the gates never end on an older version.
// The last MAX_CONFIG_VERSIONS versions are kept; deleting the tenant erases them all.
import { DurableObject } from "cloudflare:workers";
import type { TenantConfig } from "../config/schema";
import type { TenantGate } from "../gate/tenant-gate";
import { type Json, mergePatchBetween } from "../config/merge-patch";
import { noteTenantGates, readStoredTenantConfig, writeTenantConfig } from "../config/store";
import type { StoreEnv } from "../config/store-env";
import { gatesOf } from "../admission/gate-client";
import { logError } from "../log";
import { newSigningSecret } from "../observe/alerts/signature";

/** Versions kept per tenant; older ones are dropped as new ones come (each holds a config of at most 256 KiB). */
export const MAX_CONFIG_VERSIONS = 100;
/** After a rotation, alerts are signed with the old secret too for this long, so receivers can switch over. */
export const SECRET_GRACE_MS = 24 * 3600 * 1000;

interface ConfigLogEnv extends StoreEnv {
  TENANT_GATE: DurableObjectNamespace<TenantGate>;
}

/** Who changed a config: the operator (ADMIN_TOKEN) or a tenant admin key, by its id. */
export type Actor = "operator" | `admin-key:${string}`;

export interface ConfigChange {
  tenant: string;
  config: TenantConfig;
  actor: Actor;
  kind: "put" | "patch" | "rollback";
  /** The version a rollback restored. */
  rollbackOf?: number;
}

export interface ConfigVersion {
  version: number;
  /** Unix seconds. */
  createdAt: number;
  actor: Actor;
  kind: ConfigChange["kind"];
  rollbackOf: number | null;
  /** The merge patch from the version before (the whole config for the first), as JSON text. */
  diff: string;
}

/** The tenant's ConfigLog. */
export const configLogOf = (namespace: DurableObjectNamespace<ConfigLog>, tenant: string): DurableObjectStub<ConfigLog> =>
  namespace.get(namespace.idFromName(tenant));

/** Optimistic concurrency: commit only if the current version is `expected` (null: whatever it is). */
export type CommitResult = { ok: true; version: number } | { ok: false; current: number };

interface VersionRow {
  version: number;
  created_at: number;
  actor: string;
  kind: string;
  rollback_of: number | null;
  diff: string;
  config: string;
  [column: string]: SqlStorageValue;
}

export class ConfigLog extends DurableObject<ConfigLogEnv> {
  /** Commits run one at a time, in arrival order (a commit awaits KV and the gates). */
  private committing: Promise<unknown> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: ConfigLogEnv) {
    super(ctx, env);
    this.createTable();
  }

  private createTable(): void {
    this.ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS versions (
      version INTEGER PRIMARY KEY, created_at INTEGER NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL,
      rollback_of INTEGER, diff TEXT NOT NULL, config TEXT NOT NULL)`);
    // The alert signing secret ('current'), and the one a rotation replaced ('previous', until expires_at).
    this.ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS signing_secrets (
      name TEXT PRIMARY KEY, secret TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER)`);
  }

  /**
   * The secrets alerts are signed with: the current one (created on first use), then one a rotation
   * replaced while its grace period lasts. Null when the tenant has no config (deleted): nothing is
   * created for it.
   */
  async signingSecrets(tenant: string): Promise<string[] | null> {
    if (!(await this.current(tenant))) return null;
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    sql.exec(`DELETE FROM signing_secrets WHERE expires_at IS NOT NULL AND expires_at <= ?`, now);
    if (sql.exec(`SELECT 1 FROM signing_secrets WHERE name = 'current'`).toArray().length === 0)
      sql.exec(`INSERT INTO signing_secrets (name, secret, created_at) VALUES ('current', ?, ?)`, newSigningSecret(), now);
    return sql
      .exec<{ secret: string }>(`SELECT secret FROM signing_secrets ORDER BY name = 'current' DESC`)
      .toArray()
      .map((r) => r.secret);
  }

  /** A new current secret; the old one keeps signing for SECRET_GRACE_MS. Null when the tenant has no config. */
  async rotateSigningSecret(tenant: string): Promise<{ secret: string; previousExpiresAt: number | null } | null> {
    const existing = await this.signingSecrets(tenant);
    if (!existing) return null;
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    sql.exec(`DELETE FROM signing_secrets WHERE name = 'previous'`);
    sql.exec(`UPDATE signing_secrets SET name = 'previous', expires_at = ? WHERE name = 'current'`, now + SECRET_GRACE_MS);
    const secret = newSigningSecret();
    sql.exec(`INSERT INTO signing_secrets (name, secret, created_at) VALUES ('current', ?, ?)`, secret, now);
    return { secret, previousExpiresAt: now + SECRET_GRACE_MS };
  }

  /** The current version (0: a config stored before versions were kept, or none). */
  async version(): Promise<number> {
    return this.latest()?.version ?? 0;
  }

  /** The current config and its version; null when the tenant has none. */
  async current(tenant: string): Promise<{ version: number; config: TenantConfig } | null> {
    const latest = this.latest();
    if (latest) return { version: latest.version, config: JSON.parse(latest.config) as TenantConfig };
    const stored = await readStoredTenantConfig(this.env, tenant);
    return stored && { version: 0, config: stored };
  }

  async commit(change: ConfigChange, expected: number | null): Promise<CommitResult> {
    const run = this.committing.then(() => this.commitNow(change, expected));
    this.committing = run.catch(() => {});
    return run;
  }

  /** Newest first, versions below `before` (all when absent), at most `limit`. */
  async history(limit: number, before?: number): Promise<ConfigVersion[]> {
    const rows = this.ctx.storage.sql
      .exec<VersionRow>(`SELECT * FROM versions WHERE version < ? ORDER BY version DESC LIMIT ?`, before ?? Number.MAX_SAFE_INTEGER, limit)
      .toArray();
    return rows.map(toVersion);
  }

  /** The config as it was at `version`, or null when that version is not kept. */
  async configAt(version: number): Promise<TenantConfig | null> {
    const row = this.ctx.storage.sql.exec<VersionRow>(`SELECT config FROM versions WHERE version = ?`, version).toArray()[0];
    return row ? (JSON.parse(row.config) as TenantConfig) : null;
  }

  /** The tenant is deleted: its versions go with it. */
  async erase(): Promise<void> {
    await this.committing;
    await this.ctx.storage.deleteAll();
    // A tenant created again under the same id starts at version 1.
    this.createTable();
  }

  private latest(): VersionRow | undefined {
    return this.ctx.storage.sql.exec<VersionRow>(`SELECT * FROM versions ORDER BY version DESC LIMIT 1`).toArray()[0];
  }

  private async commitNow(change: ConfigChange, expected: number | null): Promise<CommitResult> {
    const latest = this.latest();
    const current = latest?.version ?? 0;
    if (expected !== null && expected !== current) return { ok: false, current };
    const { tenant, config } = change;
    const previous = latest ? (JSON.parse(latest.config) as TenantConfig) : await readStoredTenantConfig(this.env, tenant);
    const diff = mergePatchBetween(previous as unknown as Json, config as unknown as Json) ?? {};
    // Gates a request may reach are counted before the config that uses them is visible.
    await noteTenantGates(this.env, tenant, config.limits.shards);
    await writeTenantConfig(this.env, tenant, config);
    const version = current + 1;
    const sql = this.ctx.storage.sql;
    sql.exec(
      `INSERT INTO versions (version, created_at, actor, kind, rollback_of, diff, config) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      version,
      Math.floor(Date.now() / 1000),
      change.actor,
      change.kind,
      change.rollbackOf ?? null,
      JSON.stringify(diff),
      JSON.stringify(config),
    );
    sql.exec(`DELETE FROM versions WHERE version <= ?`, version - MAX_CONFIG_VERSIONS);
    // Gates left over after the shard count was lowered get a share of nothing. A gate that does
    // not answer now reads the config from KV within CONFIG_CACHE_TTL_SECONDS.
    const gates = Math.max(config.limits.shards, previous?.limits.shards ?? 1);
    await Promise.all(
      gatesOf(this.env.TENANT_GATE, tenant, gates).map((gate, shard) =>
        gate
          .applyConfig(tenant, config, shard)
          .catch((err: unknown) => logError(undefined, "config not pushed to a gate", err, { tenant, shard })),
      ),
    );
    return { ok: true, version };
  }
}

function toVersion(row: VersionRow): ConfigVersion {
  return {
    version: row.version,
    createdAt: row.created_at,
    actor: row.actor as Actor,
    kind: row.kind as ConfigChange["kind"],
    rollbackOf: row.rollback_of,
    diff: row.diff,
  };
}
