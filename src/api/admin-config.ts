// A tenant's config through the admin API: replace it (PUT, operator), change part of it (PATCH,
// JSON Merge Patch), read it, page through its history and roll back to a version. Every write
// goes through the tenant's ConfigLog (admin/config-log.ts), which versions it; `ETag` on reads
// and `If-Match` on writes make a change that raced another fail with 412 instead of undoing it.
import { Hono } from "hono";
import * as z from "zod";
import type { AdminPrincipal, AppEnv } from "./context";
import type { Env } from "../env";
import { errorResponse } from "../stream/errors";
import { boundedBody, jsonBody, validJson } from "./validation";
import { TenantConfigSchema, describeIssues, type TenantConfig } from "../config/schema";
import { allPools, fleetIssues } from "../config/fleet";
import { poolGateOf } from "../pool/pool-gate";
import { backendUrlProblem } from "../config/backend-url";
import { backendUrlPolicy, outboundUrlPolicy } from "../serve/url-policy";
import { type Json, applyMergePatch, mergePatchBetween } from "../config/merge-patch";
import { operatorFieldsChanged, redactBackends, withOperatorFields } from "../config/operator-fields";
import { deleteTenant, forgetTenantGates, readTenantConfig, tenantGateCount } from "../config/store";
import { deleteDeadLetters } from "../observe/dead-letters";
import { deleteUndelivered } from "../observe/alerts/undelivered";
import { WorkflowStore } from "../workflows/store";
import { stopInstance } from "./workflows";
import { FileStore } from "../jobs/files";
import { BatchStore } from "../jobs/batches";
import { GenerationStore } from "../jobs/generations";
import { StoredResponses } from "../serve/stored-responses";
import { gatesOf } from "../admission/gate-client";
import { type ConfigChange, MAX_CONFIG_VERSIONS, configLogOf } from "../admin/config-log";
import { actorOf, operatorOnly, tenantNotFound } from "./admin-scope";

/** Admin bodies are small: a config of 64 backends and 256 aliases fits many times over. */
export const adminBody = boundedBody(() => ({ maxBytes: 256 * 1024, readTimeoutMs: 30_000 }));

/** A merge patch of a config: a JSON object (kept as parsed: its keys are never assigned to an object). */
const MergePatchSchema = z.custom<Record<string, Json>>(
  (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  "a merge patch of a config is a JSON object",
);
const RollbackSchema = z.object({ version: z.number().int().positive() });

/** Tries of a PATCH without If-Match that raced another change (it is merged again onto the new version). */
const PATCH_TRIES = 3;

const logOf = (env: Env, tenant: string) => configLogOf(env.CONFIG_LOG, tenant);

/** Stops the tenant's open workflow runs, then erases its definitions and runs. */
async function eraseWorkflows(env: Env, tenant: string): Promise<void> {
  const store = new WorkflowStore(env.DB, tenant);
  await Promise.all((await store.openRunIds()).map((id) => stopInstance(env, id)));
  await store.deleteAll();
}

/** Every pool forgets the tenant (its credits and tokens served): it may have used any of them once. */
async function forgetInPools(env: Env, tenant: string): Promise<void> {
  const pools = await allPools(env);
  await Promise.all(pools.map((pool) => poolGateOf(env.POOL_GATE, pool).forgetTenant(tenant)));
}

/** What the caller may see of a config or a change: a tenant admin sees no backend URLs or credentials. */
const visible = <T extends object>(admin: AdminPrincipal, document: T): T =>
  admin.kind === "operator" ? document : redactBackends(document);

const etag = (version: number) => `"${version}"`;

/**
 * The version `If-Match` asks for: null without the header (unconditional), the current one for
 * `*` or a list naming it, -1 (which never matches) otherwise.
 */
function expectedVersion(header: string | undefined, current: number): number | null {
  if (header === undefined) return null;
  if (header.trim() === "*") return current;
  const versions = [...header.matchAll(/(?:^|,)\s*"(\d+)"/g)].map((m) => Number(m[1]));
  return versions.includes(current) ? current : -1;
}

const versionMismatch = (current: number) =>
  errorResponse(412, "version_mismatch", `The config changed since that version: it is now version ${current}. Read it again and retry.`, {
    etag: etag(current),
  });

const invalidConfig = (error: Parameters<typeof describeIssues>[0]) =>
  errorResponse(400, "invalid_request", `Invalid config: ${describeIssues(error)}`);

/**
 * The 400 for a backend, webhook or effect host sluice will not call, or null. Backends are judged
 * when they change (`current`: the config before): a change to other fields never re-judges them.
 */
function urlRefusal(env: Env, config: TenantConfig, current?: TenantConfig): Response | null {
  if (!current || mergePatchBetween(current.backends as unknown as Json, config.backends as unknown as Json) !== undefined) {
    const policy = backendUrlPolicy(env);
    for (const [i, backend] of config.backends.entries()) {
      const problem = backendUrlProblem(backend.url, policy);
      if (problem) return errorResponse(400, "invalid_backend_url", `backends.${i}.url (backend "${backend.id}") ${problem}.`);
    }
  }
  const outbound = outboundUrlPolicy(env, config);
  for (const [i, webhook] of config.alerts.webhooks.entries()) {
    const problem = backendUrlProblem(webhook.url, outbound);
    if (problem) return errorResponse(400, "invalid_webhook_url", `alerts.webhooks.${i}.url (webhook "${webhook.id}") ${problem}.`);
  }
  for (const [i, host] of config.workflows.effectHosts.entries()) {
    const problem = backendUrlProblem(`http://${host}/`, outbound);
    if (problem) return errorResponse(400, "invalid_effect_host", `workflows.effectHosts.${i} ("${host.slice(0, 80)}") ${problem}.`);
  }
  return null;
}

/** The 400 for backend ids and pools the config names that neither it nor the fleet defines, or null. */
async function fleetRefusal(env: Env, config: TenantConfig): Promise<Response | null> {
  const issues = await fleetIssues(env, config);
  return issues.length === 0 ? null : invalidConfig({ issues });
}

const operatorFieldsRefusal = (fields: string[]) =>
  errorResponse(403, "operator_only_fields", `Only the operator (ADMIN_TOKEN) may change ${fields.join(", ")}.`);

export const tenantConfigRoute = new Hono<AppEnv>()
  .put(
    "/:tenant",
    operatorOnly("replace a whole config (tenant admin keys change it with PATCH)"),
    jsonBody,
    adminBody,
    validJson(TenantConfigSchema),
    async (c) => {
      const tenant = c.req.param("tenant");
      const config = c.req.valid("json");
      const problem = urlRefusal(c.env, config) ?? (await fleetRefusal(c.env, config));
      if (problem) return problem;
      const log = logOf(c.env, tenant);
      const expected = expectedVersion(c.req.header("if-match"), await log.version());
      const committed = await log.commit({ tenant, config, actor: actorOf(c.get("admin")), kind: "put" }, expected);
      if (!committed.ok) return versionMismatch(committed.current);
      return c.json(config, 200, { etag: etag(committed.version) });
    },
  )
  .get("/:tenant", async (c) => {
    const tenant = c.req.param("tenant");
    const current = await logOf(c.env, tenant).current(tenant);
    if (!current) return tenantNotFound(tenant);
    return c.json(visible(c.get("admin"), current.config), 200, { etag: etag(current.version) });
  })
  .patch("/:tenant", jsonBody, adminBody, validJson(MergePatchSchema), async (c) => {
    const tenant = c.req.param("tenant");
    const admin = c.get("admin");
    const patch = c.req.valid("json");
    const log = logOf(c.env, tenant);
    for (let tries = 1; ; tries++) {
      const current = await log.current(tenant);
      if (!current) return tenantNotFound(tenant);
      const asked = expectedVersion(c.req.header("if-match"), current.version);
      if (asked !== null && asked !== current.version) return versionMismatch(current.version);
      const patched = applyMergePatch(current.config as unknown as Json, patch);
      // What a tenant may not change is refused before anything is said about the rest.
      const fields = admin.kind === "tenant" ? operatorFieldsChanged(current.config, patched as unknown as TenantConfig) : [];
      if (fields.length > 0) return operatorFieldsRefusal(fields);
      const merged = TenantConfigSchema.safeParse(patched);
      if (!merged.success) return invalidConfig(merged.error);
      const problem = urlRefusal(c.env, merged.data, current.config) ?? (await fleetRefusal(c.env, merged.data));
      if (problem) return problem;
      // A patch that changes nothing makes no version.
      if (mergePatchBetween(current.config as unknown as Json, merged.data as unknown as Json) === undefined)
        return c.json(visible(admin, current.config), 200, { etag: etag(current.version) });
      const committed = await log.commit({ tenant, config: merged.data, actor: actorOf(admin), kind: "patch" }, asked ?? current.version);
      if (committed.ok) return c.json(visible(admin, merged.data), 200, { etag: etag(committed.version) });
      // Without If-Match the patch applies to whatever is current: merge it again onto that.
      if (asked !== null || tries >= PATCH_TRIES) return versionMismatch(committed.current);
    }
  })
  .delete("/:tenant", operatorOnly("delete a tenant"), async (c) => {
    const tenant = c.req.param("tenant");
    const [previous, recorded] = await Promise.all([readTenantConfig(c.env, tenant), tenantGateCount(c.env, tenant)]);
    // A recorded gate count without a config: an earlier DELETE stopped before its erase finished.
    if (!(await deleteTenant(c.env, tenant)) && recorded === null) return tenantNotFound(tenant);
    // Every gate the tenant ever used (its shard count may have been higher once), then its dead
    // letters and config history: what a request still in flight writes lands before this erase.
    const gates = Math.max(recorded ?? 1, previous?.limits.shards ?? 1);
    await Promise.all(gatesOf(c.env.TENANT_GATE, tenant, gates).map((gate) => gate.erase()));
    await forgetInPools(c.env, tenant);
    await Promise.all([
      deleteDeadLetters(c.env.DB, tenant),
      deleteUndelivered(c.env.DB, tenant),
      new FileStore(c.env.DB, c.env.FILES, tenant).deleteAll(),
      new BatchStore(c.env.DB, tenant).deleteAll(),
      new GenerationStore(c.env.DB, tenant).deleteAll(),
      new StoredResponses(c.env.DB, tenant).deleteAll(),
      eraseWorkflows(c.env, tenant),
    ]);
    await logOf(c.env, tenant).erase();
    await forgetTenantGates(c.env, tenant);
    return c.json({ deleted: tenant });
  })
  .get("/:tenant/config/history", async (c) => {
    const tenant = c.req.param("tenant");
    const limit = Number(c.req.query("limit") ?? "20");
    const before = c.req.query("before");
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      return errorResponse(400, "invalid_limit", "limit must be an integer from 1 to 100.");
    if (before !== undefined && !/^\d{1,9}$/.test(before)) return errorResponse(400, "invalid_before", "before must be a version number.");
    const log = logOf(c.env, tenant);
    if (!(await log.current(tenant))) return tenantNotFound(tenant);
    const versions = await log.history(limit, before === undefined ? undefined : Number(before));
    const admin = c.get("admin");
    const data = versions.map((v) => ({
      version: v.version,
      created_at: v.createdAt,
      actor: v.actor,
      kind: v.kind,
      rollback_of: v.rollbackOf,
      diff: visible(admin, JSON.parse(v.diff) as Record<string, unknown>),
    }));
    return c.json({ object: "list", data, next_before: versions.length === limit ? versions[versions.length - 1]!.version : null });
  })
  .post("/:tenant/config/rollback", jsonBody, adminBody, validJson(RollbackSchema), async (c) => {
    const tenant = c.req.param("tenant");
    const admin = c.get("admin");
    const { version } = c.req.valid("json");
    const log = logOf(c.env, tenant);
    const current = await log.current(tenant);
    if (!current) return tenantNotFound(tenant);
    const stored = await log.configAt(version);
    if (!stored)
      return errorResponse(
        404,
        "version_not_found",
        `Tenant "${tenant}" has no version ${version} (the last ${MAX_CONFIG_VERSIONS} versions are kept).`,
      );
    // A tenant admin restores its own fields; backends and limits stay as the operator set them.
    const target: TenantConfig = admin.kind === "tenant" ? withOperatorFields(stored, current.config) : stored;
    const parsed = TenantConfigSchema.safeParse(target);
    if (!parsed.success) return invalidConfig(parsed.error);
    const refused = await fleetRefusal(c.env, parsed.data);
    if (refused) return refused;
    const change: ConfigChange = { tenant, config: parsed.data, actor: actorOf(admin), kind: "rollback", rollbackOf: version };
    const asked = expectedVersion(c.req.header("if-match"), current.version);
    const committed = await log.commit(change, asked ?? current.version);
    if (!committed.ok) return versionMismatch(committed.current);
    return c.json(visible(admin, parsed.data), 200, { etag: etag(committed.version) });
  });
