// Workflow runs (docs/workflows.md, "Workflows"): start one (an Idempotency-Key never starts a second), read it
// with every step's status, attempts, backend, timings, tokens and output or error, follow its
// events as SSE (resumable with Last-Event-ID), cancel it, list them.
import { Hono } from "hono";
import * as z from "zod";
import type { AppEnv } from "./context";
import type { Env } from "../env";
import { tenantAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import { logError } from "../log";
import { validIdempotencyKey } from "../admission/dedup-key";
import { boundedBody, jsonBody, validJson } from "./validation";
import { listLimit } from "./files";
import { validWorkflowName, workflowNotFound } from "./admin-workflows";
import { MAX_INPUT_BYTES, WorkflowStore } from "../workflows/store";
import { ENDED_RUN } from "../workflows/core/run-state";
import { runEvents } from "../workflows/events";

const StartSchema = z.object({ input: z.unknown().optional() });
const startBody = boundedBody(() => ({ maxBytes: MAX_INPUT_BYTES, readTimeoutMs: 30_000 }));
const runNotFound = (id: string) => errorResponse(404, "run_not_found", `No workflow run ${id.slice(0, 80)}.`);
const storeOf = (env: Env, tenant: string) => new WorkflowStore(env.DB, tenant);

export const workflowsRoute = new Hono<AppEnv>()
  .use("*", tenantAuth)
  .get("/runs", async (c) => {
    const limit = listLimit(c.req.query("limit"));
    if (limit === null) return errorResponse(400, "invalid_limit", "limit must be an integer from 1 to 100.");
    const page = await storeOf(c.env, c.get("tenant")).runs(limit, c.req.query("after"));
    return c.json({ object: "list", data: page.runs, last_id: page.runs.at(-1)?.id ?? null, has_more: page.more });
  })
  .get("/runs/:id", async (c) => {
    const store = storeOf(c.env, c.get("tenant"));
    const run = await store.run(c.req.param("id"));
    if (!run) return runNotFound(c.req.param("id"));
    if (run.status !== "running" || !(await reconcile(c.env, store, run.id))) return c.json(run);
    return c.json(await store.run(run.id));
  })
  .get("/runs/:id/events", async (c) => {
    const store = storeOf(c.env, c.get("tenant"));
    const id = c.req.param("id");
    const last = c.req.header("last-event-id");
    if (last !== undefined && !/^\d{1,15}$/.test(last))
      return errorResponse(400, "invalid_last_event_id", "Last-Event-ID must be an event's id.");
    if ((await store.runStatus(id)) === null) return runNotFound(id);
    return new Response(runEvents(store, id, Number(last ?? 0)), {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  })
  .post("/runs/:id/cancel", async (c) => {
    const store = storeOf(c.env, c.get("tenant"));
    const id = c.req.param("id");
    const status = await store.runStatus(id);
    if (status === null) return runNotFound(id);
    if (ENDED_RUN.has(status)) return errorResponse(409, "run_ended", `Run ${id} already ended: ${status}.`);
    await stopInstance(c.env, id);
    // The run may have ended meanwhile: then it stays as it ended.
    if (await store.setRunStatus(id, "cancelled", Date.now()))
      await store.addEvent(id, "run:end", { run: id, type: "run.cancelled" }, Date.now());
    const now = (await store.run(id))!;
    return now.status === "cancelled" ? c.json(now) : errorResponse(409, "run_ended", `Run ${id} already ended: ${now.status}.`);
  })
  .post("/:name/runs", jsonBody, startBody, validJson(StartSchema), async (c) => {
    const tenant = c.get("tenant");
    const name = c.req.param("name");
    if (!validWorkflowName(name)) return workflowNotFound(name.slice(0, 80));
    const key = c.req.header("idempotency-key");
    if (key !== undefined && !validIdempotencyKey(key))
      return errorResponse(400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters.");
    const store = storeOf(c.env, tenant);
    if (key !== undefined) {
      const existing = await store.runIdByKey(key);
      if (existing) return c.json(await store.run(existing), 200, { location: `/v1/workflows/runs/${existing}` });
    }
    const stored = await store.definition(name);
    if (!stored) return workflowNotFound(name);
    const limit = c.get("config").workflows.maxConcurrentRuns;
    if ((await store.openRuns()) >= limit)
      return errorResponse(429, "too_many_runs", `The tenant has ${limit} workflow runs queued or running (workflows.maxConcurrentRuns).`);
    // A fresh id every time, never one derived from the key: a tenant deleted and re-created under
    // the same name must not meet its old runs' instances in Cloudflare Workflows.
    const id = `wfr_${crypto.randomUUID().replaceAll("-", "")}`;
    const input = c.req.valid("json").input ?? null;
    // A start racing one with the same key inserts nothing (the key is unique per tenant): it answers with the other's run.
    if (!(await store.createRun({ id, name, version: stored.version, input, idempotencyKey: key }, Date.now()))) {
      const winner = key === undefined ? null : await store.runIdByKey(key);
      if (winner) return c.json(await store.run(winner), 200, { location: `/v1/workflows/runs/${winner}` });
      return errorResponse(503, "run_not_started", `The run could not be recorded (request ${c.get("requestId")}); start it again.`);
    }
    try {
      await c.env.WORKFLOWS.create({
        id,
        params: { tenant, runId: id, name, version: stored.version, definition: stored.definition, input },
      });
    } catch (err) {
      logError(c.get("requestId"), "workflow run not started", err, { tenant, run: id });
      await store.setRunStatus(id, "failed", Date.now(), "the run could not be started");
      return errorResponse(503, "run_not_started", `The run could not be started (request ${c.get("requestId")}); start it again.`);
    }
    return c.json(await store.run(id), 201, { location: `/v1/workflows/runs/${id}` });
  });

/**
 * A run recorded as running whose instance stopped without ending it (a fault of sluice's own, logged
 * with the instance's error) is recorded as failed. True when it was.
 */
async function reconcile(env: Env, store: WorkflowStore, id: string): Promise<boolean> {
  let instance: InstanceStatus;
  try {
    instance = await (await env.WORKFLOWS.get(id)).status();
  } catch {
    return false;
  }
  if (instance.status !== "errored" && instance.status !== "terminated") return false;
  logError(undefined, "workflow run stopped unexpectedly", instance.error?.message ?? instance.status, { tenant: store.tenant, run: id });
  const changed = await store.setRunStatus(id, "failed", Date.now(), "the run stopped unexpectedly");
  if (changed) await store.addEvent(id, "run:end", { run: id, type: "run.failed", error: "the run stopped unexpectedly" }, Date.now());
  return changed;
}

/** Stops a run's Workflow instance; one already gone is stopped already. */
export async function stopInstance(env: Env, id: string): Promise<void> {
  try {
    await (await env.WORKFLOWS.get(id)).terminate();
  } catch (err) {
    logError(undefined, "workflow instance not terminated (it may have ended)", err, { run: id });
  }
}
