// Files and batches through the API, for the workerd tests of batches and their hardening.
import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { eventually } from "./helpers";

/** Batches run through queues with retries: generous, never waited out when things work. */
export const BATCH_WAIT_MS = 60_000;

export const messagesOf = (id: string) => [{ role: "user", content: `batch question ${id}` }];
export const line = (id: string, body: Record<string, unknown> = {}) =>
  JSON.stringify({
    custom_id: id,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model: "chat", messages: messagesOf(id), ...body },
  });

export function api(key: string, path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`https://sluice.test/v1/${path}`, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.headers ?? {}) } });
}

export async function upload(key: string, lines: string[], purpose = "batch", filename = "input.jsonl"): Promise<Response> {
  const form = new FormData();
  form.set("purpose", purpose);
  form.set("file", new File([lines.join("\n")], filename, { type: "application/jsonl" }));
  return api(key, "files", { method: "POST", body: form });
}

export async function createBatch(key: string, lines: string[], endpoint = "/v1/chat/completions"): Promise<any> {
  const file = (await (await upload(key, lines)).json()) as { id: string };
  const res = await api(key, "batches", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input_file_id: file.id, endpoint, completion_window: "24h", metadata: { run: "test" } }),
  });
  expect(res.status).toBe(200);
  return res.json();
}

export async function batchOf(key: string, id: string): Promise<any> {
  return (await api(key, `batches/${id}`)).json();
}

export async function until(key: string, id: string, status: string): Promise<any> {
  let batch: any;
  await eventually(async () => {
    batch = await batchOf(key, id);
    return batch.status === status;
  }, BATCH_WAIT_MS);
  return batch;
}

export async function fileLines(key: string, id: string | null): Promise<any[]> {
  if (id === null) return [];
  // Read as bytes: workerd warns on text() of a type it does not know as text (application/jsonl).
  const text = new TextDecoder().decode(await (await api(key, `files/${id}/content`)).arrayBuffer());
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}
