// Fleet backends and pools (operator only; README, "Shared pools"). A fleet backend is a tenant
// backend's fields plus its pool; its API key is write-only (never returned; a PUT without one keeps
// the stored key). Its capacity is pushed to the pool's PoolGate before the backend is visible to
// tenants, so the pool owns it from the first request on.
import { Hono } from "hono";
import type { AppEnv } from "./context";
import type { Env } from "../env";
import { errorResponse } from "../stream/errors";
import { jsonBody, validJson } from "./validation";
import { adminBody } from "./admin-config";
import { readPage } from "./admin-paging";
import { backendUrlProblem } from "../config/backend-url";
import { backendUrlPolicy } from "../serve/url-policy";
import {
  type FleetBackend,
  FleetBackendSchema,
  PoolSchema,
  deleteFleetBackend,
  deletePool,
  listFleet,
  readFleetBackend,
  readPool,
  writeFleetBackend,
  writePool,
} from "../config/fleet";
import { BackendSchema } from "../config/schema";
import { poolGateOf } from "../pool/pool-gate";

const poolGate = (env: Env, pool: string, locationHint?: DurableObjectLocationHint) => poolGateOf(env.POOL_GATE, pool, locationHint);

/** What the operator reads of a fleet backend: everything but its key. */
function visible(backend: FleetBackend) {
  const { apiKey, ...rest } = backend;
  return { ...rest, hasApiKey: apiKey !== undefined };
}

const invalidId = (what: string) =>
  errorResponse(400, "invalid_id", `${what} ids are 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit.`);
const validId = (id: string) => BackendSchema.shape.id.safeParse(id).success;

const backendNotFound = (id: string) => errorResponse(404, "backend_not_found", `No fleet backend "${id}".`);
const poolNotFound = (id: string) => errorResponse(404, "pool_not_found", `No pool "${id}".`);

export const fleetBackendsRoute = new Hono<AppEnv>()
  .get("/", async (c) => {
    const page = await readPage(c.req.query(), (limit, cursor) => listFleet(c.env, "backend", limit, cursor));
    if (page instanceof Response) return page;
    const found = await Promise.all(page.ids.map((id) => readFleetBackend(c.env, id)));
    const data = found.filter((b): b is FleetBackend => b !== null).map(visible);
    return c.json({ object: "list", data, next_cursor: page.cursor });
  })
  .put("/:id", jsonBody, adminBody, validJson(FleetBackendSchema), async (c) => {
    const id = c.req.param("id");
    if (!validId(id)) return invalidId("Backend");
    const body = c.req.valid("json");
    if (body.id !== undefined && body.id !== id)
      return errorResponse(400, "id_mismatch", `The body names backend "${body.id}", the path "${id}".`);
    const problem = backendUrlProblem(body.url, backendUrlPolicy(c.env));
    if (problem) return errorResponse(400, "invalid_backend_url", `url ${problem}.`);
    if (!(await readPool(c.env, body.pool)))
      return errorResponse(
        400,
        "invalid_request",
        `Invalid request body: pool: unknown pool "${body.pool}" (create it with PUT /admin/pools/${body.pool}).`,
      );
    const previous = await readFleetBackend(c.env, id);
    const backend: FleetBackend = { ...body, id, ...(body.apiKey === undefined && previous?.apiKey ? { apiKey: previous.apiKey } : {}) };
    // The pool owns the capacity before any tenant can route to the backend.
    await poolGate(c.env, backend.pool).setBackend(id, backend.maxConcurrency, { id, url: backend.url, apiKey: backend.apiKey });
    if (previous && previous.pool !== backend.pool) await poolGate(c.env, previous.pool).dropBackend(id);
    await writeFleetBackend(c.env, backend);
    return c.json(visible(backend));
  })
  .get("/:id", async (c) => {
    const backend = await readFleetBackend(c.env, c.req.param("id"));
    return backend ? c.json(visible(backend)) : backendNotFound(c.req.param("id"));
  })
  .delete("/:id", async (c) => {
    const id = c.req.param("id");
    const backend = await readFleetBackend(c.env, id);
    if (!backend) return backendNotFound(id);
    // Tenants whose routes name it go on with their other backends (a route of none fails 503).
    await deleteFleetBackend(c.env, id);
    await poolGate(c.env, backend.pool).dropBackend(id);
    return c.json({ deleted: id });
  });

export const poolsRoute = new Hono<AppEnv>()
  .get("/", async (c) => {
    const page = await readPage(c.req.query(), (limit, cursor) => listFleet(c.env, "pool", limit, cursor));
    if (page instanceof Response) return page;
    const found = await Promise.all(page.ids.map(async (id) => ({ id, pool: await readPool(c.env, id) })));
    const data = found.filter((p) => p.pool !== null).map((p) => ({ id: p.id, ...p.pool }));
    return c.json({ object: "list", data, next_cursor: page.cursor });
  })
  .put("/:id", jsonBody, adminBody, validJson(PoolSchema), async (c) => {
    const id = c.req.param("id");
    if (!validId(id)) return invalidId("Pool");
    const pool = c.req.valid("json");
    // The first call places the pool's gate (near its backends); later hints cannot move it.
    if (!(await readPool(c.env, id))) await poolGate(c.env, id, pool.locationHint).backendCount();
    await writePool(c.env, id, pool);
    return c.json({ id, ...pool });
  })
  .get("/:id", async (c) => {
    const id = c.req.param("id");
    const pool = await readPool(c.env, id);
    if (!pool) return poolNotFound(id);
    return c.json({ id, ...pool, stats: await poolGate(c.env, id).stats(id) });
  })
  .delete("/:id", async (c) => {
    const id = c.req.param("id");
    if (!(await readPool(c.env, id))) return poolNotFound(id);
    const gate = poolGate(c.env, id);
    const backends = await gate.backendCount();
    if (backends > 0)
      return errorResponse(409, "pool_in_use", `Pool "${id}" has ${backends} backend(s): delete them or move them to another pool first.`);
    await deletePool(c.env, id);
    await gate.erase();
    return c.json({ deleted: id });
  });
