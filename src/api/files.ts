// OpenAI's Files API for batch input (jobs/files.ts stores them): upload a JSONL file with
// purpose "batch" (multipart), read its object or its content, list and delete. A tenant's API key
// reaches only its own files.
import { Hono } from "hono";
import type { AppEnv } from "./context";
import { tenantAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import { readBodyWithin } from "./validation";
import { MAX_FILE_BYTES, parseBatchInput } from "../jobs/batch-input";
import { FileStore, MAX_FILENAME_CHARS, MAX_TENANT_FILE_BYTES } from "../jobs/files";

/** Room for the multipart framing around the file. */
const MULTIPART_OVERHEAD = 64 * 1024;
const UPLOAD_READ_TIMEOUT_MS = 120_000;

const fileNotFound = (id: string) => errorResponse(404, "file_not_found", `No file ${id}.`);
const storeOf = (c: { env: AppEnv["Bindings"]; get: (k: "tenant") => string }) => new FileStore(c.env.DB, c.env.FILES, c.get("tenant"));

/** A listing's `limit` (20 when absent), or null when it is not 1-100. */
export function listLimit(value: string | undefined): number | null {
  const limit = Number(value ?? "20");
  return Number.isInteger(limit) && limit >= 1 && limit <= 100 ? limit : null;
}

export const filesRoute = new Hono<AppEnv>()
  .use("*", tenantAuth)
  .post("/", async (c) => {
    const type = c.req.header("content-type") ?? "";
    if (!type.toLowerCase().startsWith("multipart/form-data"))
      return errorResponse(415, "unsupported_media_type", "Upload a file as multipart/form-data with the fields 'purpose' and 'file'.");
    const body = await readBodyWithin(c.req.raw, { maxBytes: MAX_FILE_BYTES + MULTIPART_OVERHEAD, readTimeoutMs: UPLOAD_READ_TIMEOUT_MS });
    if (body instanceof Response) return body;
    let form: FormData;
    try {
      form = await new Response(body, { headers: { "content-type": type } }).formData();
    } catch {
      return errorResponse(400, "invalid_request", "The body is not valid multipart/form-data.");
    }
    const purpose = form.get("purpose");
    // workers-types declare get() as string-valued; the runtime gives file fields as File.
    const file = form.get("file") as unknown as File | string | null;
    if (purpose !== "batch") return errorResponse(400, "invalid_purpose", 'purpose must be "batch" (the one kind of file sluice keeps).');
    if (typeof file === "string" || file === null) return errorResponse(400, "invalid_request", "The 'file' field must be a file.");
    if (file.size > MAX_FILE_BYTES) return errorResponse(413, "file_too_large", `A file holds at most ${MAX_FILE_BYTES} bytes.`);
    if (file.name.length > MAX_FILENAME_CHARS)
      return errorResponse(
        400,
        "filename_too_long",
        `A file's name is at most ${MAX_FILENAME_CHARS} characters; this one has ${file.name.length}.`,
      );
    const bytes = new Uint8Array(await file.arrayBuffer());
    const parsed = parseBatchInput(bytes);
    if (!parsed.ok) return errorResponse(400, "invalid_file", `Invalid batch file: ${parsed.message}.`);
    const store = storeOf(c);
    const now = Date.now();
    if ((await store.usedBytes(now)) + bytes.length > MAX_TENANT_FILE_BYTES)
      return errorResponse(400, "file_storage_full", `The tenant's files would exceed ${MAX_TENANT_FILE_BYTES} bytes; delete some first.`);
    const index = { offsets: parsed.offsets, customIds: parsed.customIds, endpoint: parsed.endpoint };
    return c.json(
      await store.create({ filename: file.name || "batch.jsonl", purpose: "batch", bytes, index, lines: parsed.offsets.length }, now),
    );
  })
  .get("/", async (c) => {
    const limit = listLimit(c.req.query("limit"));
    if (limit === null) return errorResponse(400, "invalid_limit", "limit must be an integer from 1 to 100.");
    const data = await storeOf(c).list(limit, c.req.query("after"));
    return c.json({ object: "list", data, has_more: data.length === limit });
  })
  .get("/:id", async (c) => {
    const file = await storeOf(c).get(c.req.param("id"));
    if (!file) return fileNotFound(c.req.param("id"));
    const { lines: _lines, ...object } = file;
    return c.json(object);
  })
  .get("/:id/content", async (c) => {
    const content = await storeOf(c).content(c.req.param("id"));
    if (!content) return fileNotFound(c.req.param("id"));
    return new Response(content, { headers: { "content-type": "application/jsonl" } });
  })
  .delete("/:id", async (c) => {
    if (!(await storeOf(c).delete(c.req.param("id")))) return fileNotFound(c.req.param("id"));
    return c.json({ id: c.req.param("id"), object: "file", deleted: true });
  });
