// OpenAI's Batch API (jobs/ runs them): create a batch over an uploaded file, read it, list them,
// cancel one. A tenant's API key reaches only its own batches.
import { Hono } from "hono";
import * as z from "zod";
import type { AppEnv } from "./context";
import { tenantAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import { boundedBody, jsonBody, validJson } from "./validation";
import { BatchStore, MAX_METADATA_PAIRS, MAX_OPEN_BATCHES } from "../jobs/batches";
import { FileStore } from "../jobs/files";
import { BATCH_ENDPOINTS } from "../jobs/batch-input";
import { listLimit } from "./files";

const WINDOW_MS = 24 * 3600 * 1000;

const CreateBatchSchema = z.object({
  input_file_id: z.string().min(1).max(64),
  endpoint: z.enum(BATCH_ENDPOINTS, `endpoint must be one of ${BATCH_ENDPOINTS.join(", ")}`),
  completion_window: z.literal("24h", 'completion_window must be "24h"'),
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((m) => Object.keys(m).length <= MAX_METADATA_PAIRS, `metadata holds at most ${MAX_METADATA_PAIRS} pairs`)
    .nullable()
    .optional(),
});

const batchNotFound = (id: string) => errorResponse(404, "batch_not_found", `No batch ${id}.`);

export const batchesRoute = new Hono<AppEnv>()
  .use("*", tenantAuth)
  .post(
    "/",
    jsonBody,
    boundedBody(() => ({ maxBytes: 64 * 1024, readTimeoutMs: 30_000 })),
    validJson(CreateBatchSchema),
    async (c) => {
      const tenant = c.get("tenant");
      const asked = c.req.valid("json");
      const batches = new BatchStore(c.env.DB, tenant);
      const file = await new FileStore(c.env.DB, c.env.FILES, tenant).get(asked.input_file_id);
      if (!file) return errorResponse(400, "invalid_input_file", `No file ${asked.input_file_id}.`);
      if (file.purpose !== "batch") return errorResponse(400, "invalid_input_file", `File ${file.id} is not a batch input file.`);
      const endpoint = (await new FileStore(c.env.DB, c.env.FILES, tenant).index(file.id))?.endpoint ?? "/v1/chat/completions";
      if (endpoint !== asked.endpoint)
        return errorResponse(400, "invalid_input_file", `The lines of file ${file.id} are for ${endpoint}, not ${asked.endpoint}.`);
      if ((await batches.openCount()) >= MAX_OPEN_BATCHES)
        return errorResponse(429, "too_many_batches", `A tenant runs at most ${MAX_OPEN_BATCHES} batches at once; wait for one to end.`);
      const batch = await batches.create(
        { inputFileId: file.id, total: file.lines, metadata: asked.metadata ?? null, windowMs: WINDOW_MS, endpoint },
        Date.now(),
      );
      await c.env.JOBS.send({ kind: "start", tenant, batchId: batch.id, from: 0 }, { contentType: "json" });
      return c.json(batch);
    },
  )
  .get("/", async (c) => {
    const limit = listLimit(c.req.query("limit"));
    if (limit === null) return errorResponse(400, "invalid_limit", "limit must be an integer from 1 to 100.");
    const data = await new BatchStore(c.env.DB, c.get("tenant")).list(limit, c.req.query("after"));
    return c.json({
      object: "list",
      data,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: data.length === limit,
    });
  })
  .get("/:id", async (c) => {
    const batch = await new BatchStore(c.env.DB, c.get("tenant")).get(c.req.param("id"));
    return batch ? c.json(batch) : batchNotFound(c.req.param("id"));
  })
  .post("/:id/cancel", async (c) => {
    const tenant = c.get("tenant");
    const batches = new BatchStore(c.env.DB, tenant);
    const batch = await batches.cancel(c.req.param("id"), Date.now());
    if (!batch) return batchNotFound(c.req.param("id"));
    // Every line already answered: nothing will finalize it but this.
    if (await batches.beginFinalizing(batch.id, Date.now()))
      await c.env.JOBS.send({ kind: "finalize", tenant, batchId: batch.id }, { contentType: "json" });
    return c.json((await batches.get(batch.id)) ?? batch);
  });
