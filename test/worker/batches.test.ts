// Files and batches end to end on Miniflare's local R2, D1 and Queues: upload, create, run each line
// as background work against real sims with faults per line, finalize into output and error files;
// redelivery, cancel, the dead-letter path and tenant isolation.
import { SELF, createExecutionContext, createMessageBatch, env, getQueueResult, runDurableObjectAlarm } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../../src/index";
import type { JobMessage } from "../../src/jobs/messages";
import { BatchStore } from "../../src/jobs/batches";
import { embeddingOf } from "../../sim/embeddings";
import type { Env } from "../../src/env";
import {
  ADMIN,
  createTenant,
  eventually,
  expectError,
  expectedText,
  expireLeases,
  gateOf,
  gateStats,
  release,
  resetSims,
  resumableConfig,
  simConfig,
  simControl,
  simStats,
} from "./helpers";
import { BATCH_WAIT_MS, api, batchOf, createBatch, fileLines, line, messagesOf, until, upload } from "./batch-helpers";

beforeEach(resetSims);

const textOf = (result: any) => result.response.body.choices[0].message.content;

/**
 * A batch in progress whose first line the test delivers itself: the row is made directly, so no
 * start message races the test's own deliveries; its second line is never delivered, so the batch
 * stays in progress.
 */
async function startedBatch(tenant: string, key: string, lines: [string, string]) {
  const file = (await (await upload(key, lines)).json()) as { id: string };
  const store = new BatchStore(env.DB, tenant);
  const batch = await store.create({ inputFileId: file.id, total: 2, metadata: null, windowMs: 3_600_000 }, Date.now());
  await store.started(batch.id, Date.now());
  const customId = JSON.parse(lines[0]).custom_id as string;
  const body: JobMessage = { kind: "line", tenant, batchId: batch.id, line: 0, customId, offset: 0, length: lines[0].length };
  return { store, batch, body };
}

/** Delivers `body` to the jobs consumer once per id, in one batch, as the queue would; what the consumer did with each. */
async function deliverLine(body: JobMessage, ids: string[]) {
  const messages = createMessageBatch<JobMessage>(
    "sluice-jobs",
    ids.map((id, i) => ({ id, timestamp: new Date(), attempts: i + 1, body })),
  );
  const ctx = createExecutionContext();
  await (worker as ExportedHandler<Env, JobMessage>).queue!(messages, env, ctx);
  return getQueueResult(messages, ctx);
}

describe("batches", () => {
  it("runs every line as background work and writes the output file, each text the sim's deterministic one", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const ids = ["q1", "q2", "q3", "q4"];
    const batch = await createBatch(
      key,
      ids.map((id) => line(id)),
    );
    expect(batch).toMatchObject({ object: "batch", status: "validating", endpoint: "/v1/chat/completions", metadata: { run: "test" } });
    const done = await until(key, batch.id, "completed");
    expect(done.request_counts).toEqual({ total: 4, completed: 4, failed: 0 });
    expect(done.error_file_id).toBeNull();
    expect(done.completed_at).toBeGreaterThanOrEqual(done.in_progress_at);
    const output = await fileLines(key, done.output_file_id);
    expect(output.map((o) => o.custom_id)).toEqual(ids);
    for (const o of output) {
      expect(o.response.status_code).toBe(200);
      expect(textOf(o)).toBe(expectedText(messagesOf(o.custom_id)));
    }
    expect((await simStats("a")).requests).toBe(4);
  });

  it("with faults per line: a pre-token failure falls back, a stream cut mid-way resumes, a client error goes to the error file", async () => {
    const { key } = await createTenant(resumableConfig(["a", "b"]));
    const batch = await createBatch(key, [
      line("falls-back", { sim_fault: { backend: "a", status: 503 } }),
      line("resumes", { sim_fault: { backend: "a", disconnect_after: 3 } }),
      line("refused", { sim_fault: { status: 400 } }),
    ]);
    const done = await until(key, batch.id, "completed");
    expect(done.request_counts).toEqual({ total: 3, completed: 2, failed: 1 });
    const output = await fileLines(key, done.output_file_id);
    expect(output.map((o) => [o.custom_id, textOf(o)])).toEqual([
      ["falls-back", expectedText(messagesOf("falls-back"))],
      ["resumes", expectedText(messagesOf("resumes"))],
    ]);
    const [refused] = await fileLines(key, done.error_file_id);
    expect(refused).toMatchObject({ custom_id: "refused", response: { status_code: 400 }, error: null });
  });

  it("a line whose backends stay down is retried by the queue, then dead-lettered: the error file and the tenant's dead letters", async () => {
    const { tenant, key } = await createTenant(
      simConfig(["a"], { retry: { maxAttempts: 1 }, breaker: { consecutiveFailures: 100, minRequests: 100 } }),
    );
    const batch = await createBatch(key, [line("ok"), line("down", { sim_fault: { status: 503 } })]);
    const done = await until(key, batch.id, "completed");
    expect(done.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
    const [failed] = await fileLines(key, done.error_file_id);
    expect(failed).toMatchObject({ custom_id: "down", response: null, error: { code: "line_failed" } });
    // wrangler.toml: max_retries = 5, so six deliveries of the line, one upstream attempt each.
    expect((await simStats("a")).requests).toBe(1 + 6);
    const letters = (await (
      await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/dead-letters`, { headers: ADMIN })
    ).json()) as any;
    // One dead letter for the line, when the queue gave up; its failed deliveries were retried, not dead letters.
    expect(letters.data).toMatchObject([{ code: "line_failed", requestId: `${batch.id}:1` }]);
    expect(letters.data).toHaveLength(1);
  });

  it("a redelivered line never generates twice: not while the first delivery runs, not after it generated", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const { store, batch, body } = await startedBatch(tenant, key, [line("once"), line("never-sent")]);
    const deliver = async (ids: string[]) => expect(await deliverLine(body, ids)).toMatchObject({ explicitAcks: ids, retryMessages: [] });
    // Two deliveries at once: the second joins the first's generation.
    await deliver(["m1", "m2"]);
    expect((await simStats("a")).requests).toBe(1);
    const recorded = await store.lines(batch.id);
    expect(recorded).toHaveLength(1);
    // As if the consumer died after generating but before recording: the next delivery replays the stored answer.
    await env.DB.prepare(`DELETE FROM batch_lines WHERE batch_id = ?`).bind(batch.id).run();
    await deliver(["m3"]);
    expect((await simStats("a")).requests).toBe(1);
    const [again] = await store.lines(batch.id);
    expect(textOf(JSON.parse(again!.result))).toBe(expectedText(messagesOf("once")));
    expect((await batchOf(key, batch.id)).request_counts).toEqual({ total: 2, completed: 1, failed: 0 });
  });

  it("a consumer that dies mid-line: the redelivery carries on from the journal's checkpoint instead of starting over", async () => {
    const { tenant, key } = await createTenant(resumableConfig(["a", "b"], { timeouts: { idleMs: 15_000 } }));
    const { store, batch, body } = await startedBatch(tenant, key, [
      line("cut", { max_tokens: 30, sim_fault: { backend: "a", hang: true, hang_after: 5 } }),
      line("never-sent"),
    ]);
    // The first delivery streams 5 tokens from a, and then (as far as the gate can tell) its consumer dies.
    // (Its stream really hangs; idleMs keeps it from failing over by itself while the test expires its lease.)
    const first = deliverLine(body, ["m1"]);
    const journalKey = `job:${batch.id}:0`;
    await eventually(async () => (await gateOf(tenant).follow(journalKey, 0, 0)).chunks.length === 6, BATCH_WAIT_MS);
    await expireLeases(tenant, 1);
    await runDurableObjectAlarm(gateOf(tenant));
    expect((await gateStats(tenant)).counters.abandoned).toBe(1);
    // The queue delivers the line again (a is down now): it continues from the checkpoint on b.
    await simControl("a", { failRate: 1, failStatus: 503 });
    expect(await deliverLine(body, ["m2"])).toMatchObject({ explicitAcks: ["m2"], retryMessages: [] });
    const [recorded] = await store.lines(batch.id);
    const result = JSON.parse(recorded!.result);
    expect(textOf(result)).toBe(expectedText(messagesOf("cut"), 30));
    expect((await gateStats(tenant)).counters.continuations).toBeGreaterThanOrEqual(1);
    expect((await simStats("b")).requests).toBe(1);
    // The dead consumer's delivery, once its stream times out, has lost its lease: it records nothing and
    // asks for another delivery, which finds the line recorded and generates nothing.
    expect(await first).toMatchObject({ explicitAcks: [], retryMessages: [{ msgId: "m1" }] });
    expect(await deliverLine(body, ["m3"])).toMatchObject({ explicitAcks: ["m3"], retryMessages: [] });
    expect(await store.lines(batch.id)).toHaveLength(1);
    expect((await simStats("b")).requests).toBe(1);
    expect((await batchOf(key, batch.id)).request_counts).toEqual({ total: 2, completed: 1, failed: 0 });
  });

  it("a batch whose completion window ended runs nothing more: its lines are reported expired", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const file = (await (await upload(key, [line("late-1"), line("late-2")])).json()) as { id: string };
    const batch = await new BatchStore(env.DB, tenant).create({ inputFileId: file.id, total: 2, metadata: null, windowMs: 0 }, Date.now());
    await env.JOBS.send({ kind: "start", tenant, batchId: batch.id, from: 0 }, { contentType: "json" });
    const done = await until(key, batch.id, "expired");
    expect(done.request_counts).toEqual({ total: 2, completed: 0, failed: 2 });
    expect(done.expired_at).not.toBeNull();
    expect((await fileLines(key, done.error_file_id)).map((e) => [e.custom_id, e.error.code])).toEqual([
      ["late-1", "batch_expired"],
      ["late-2", "batch_expired"],
    ]);
    expect((await simStats("a")).requests).toBe(0);
  });

  it("cancel stops the lines waiting for a slot at once and lets the running one finish", async () => {
    const { key } = await createTenant(simConfig(["a"], { limits: { maxConcurrency: 2, background: 1, maxQueueWaitMs: 120_000 } }));
    const hold = `cancel-${crypto.randomUUID()}`;
    const batch = await createBatch(
      key,
      ["l0", "l1", "l2", "l3"].map((id) => line(id, { sim_fault: { hold } })),
    );
    // One line runs (background holds one slot), held in the sim; the other three wait in the gate.
    await eventually(async () => (await simStats("a")).held === 1, BATCH_WAIT_MS);
    const cancelling = (await (await api(key, `batches/${batch.id}/cancel`, { method: "POST" })).json()) as any;
    expect(cancelling.status).toBe("cancelling");
    // The waiting lines end as cancelled while the running one is still held.
    await eventually(async () => (await batchOf(key, batch.id)).request_counts.failed === 3, BATCH_WAIT_MS);
    expect((await batchOf(key, batch.id)).status).toBe("cancelling");
    await release(hold);
    const done = await until(key, batch.id, "cancelled");
    expect(done.request_counts).toEqual({ total: 4, completed: 1, failed: 3 });
    expect(done.cancelled_at).toBeGreaterThanOrEqual(done.cancelling_at);
    const [ran] = await fileLines(key, done.output_file_id);
    expect(textOf(ran)).toBe(expectedText(messagesOf(ran.custom_id)));
    const errors = await fileLines(key, done.error_file_id);
    expect(errors.map((e) => e.error.code)).toEqual(["batch_cancelled", "batch_cancelled", "batch_cancelled"]);
    expect((await simStats("a")).requests).toBe(1);
  });
});

describe("batches of other endpoints", () => {
  const of = (url: string, id: string, body: Record<string, unknown>) => JSON.stringify({ custom_id: id, method: "POST", url, body });

  it("runs /v1/responses lines into response objects and /v1/embeddings lines into vectors; a batch's endpoint is its file's", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const asked = ["r1", "r2"].map((id) => of("/v1/responses", id, { model: "chat", input: `batch question ${id}` }));
    const responses = await until(key, (await createBatch(key, asked, "/v1/responses")).id, "completed");
    expect(responses).toMatchObject({ endpoint: "/v1/responses", request_counts: { total: 2, completed: 2, failed: 0 } });
    for (const out of await fileLines(key, responses.output_file_id)) {
      expect(out.response.body).toMatchObject({ object: "response", status: "completed" });
      expect(out.response.body.output_text).toBe(expectedText(messagesOf(out.custom_id)));
    }
    const embeddings = await until(
      key,
      (await createBatch(key, [of("/v1/embeddings", "e1", { model: "chat", input: ["a", "b"] })], "/v1/embeddings")).id,
      "completed",
    );
    const [vectors] = await fileLines(key, embeddings.output_file_id);
    expect(vectors.response.body.data.map((d: any) => d.embedding)).toEqual([embeddingOf("sim-model", "a"), embeddingOf("sim-model", "b")]);
    const file = (await (await upload(key, asked)).json()) as { id: string };
    await expectError(
      await api(key, "batches", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input_file_id: file.id, endpoint: "/v1/embeddings", completion_window: "24h" }),
      }),
      400,
      "invalid_input_file",
      /are for \/v1\/responses, not \/v1\/embeddings/,
    );
  });
});

describe("files", () => {
  it("refuses a bad file with a 400 naming the line, and a purpose other than batch", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    await expectError(await upload(key, [line("a"), "{not json"]), 400, "invalid_file", /^Invalid batch file: line 2: is not JSON\.$/);
    await expectError(await upload(key, [line("a")], "fine-tune"), 400, "invalid_purpose");
    await expectError(
      await api(key, "files", { method: "POST", body: "x", headers: { "content-type": "text/plain" } }),
      415,
      "unsupported_media_type",
    );
  });

  it("keeps each tenant's files and batches to itself", async () => {
    const a = await createTenant(simConfig(["a"]));
    const b = await createTenant(simConfig(["a"]));
    const batch = await createBatch(a.key, [line("mine")]);
    await until(a.key, batch.id, "completed");
    await expectError(await api(b.key, `files/${batch.input_file_id}`), 404, "file_not_found");
    await expectError(await api(b.key, `files/${batch.input_file_id}/content`), 404, "file_not_found");
    await expectError(await api(b.key, `files/${batch.input_file_id}`, { method: "DELETE" }), 404, "file_not_found");
    await expectError(await api(b.key, `batches/${batch.id}`), 404, "batch_not_found");
    await expectError(await api(b.key, `batches/${batch.id}/cancel`, { method: "POST" }), 404, "batch_not_found");
    expect(((await (await api(b.key, "batches")).json()) as any).data).toEqual([]);
    expect((await api(a.key, `files/${batch.input_file_id}`)).status).toBe(200);
  });

  it("a deleted tenant leaves no file and no batch behind", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const batch = await createBatch(key, [line("gone")]);
    await until(key, batch.id, "completed");
    expect((await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
    const objects = await env.FILES.list({ prefix: `${tenant}/` });
    expect(objects.objects).toEqual([]);
    const rows = await env.DB.prepare(
      `SELECT (SELECT COUNT(*) FROM files WHERE tenant = ?1) + (SELECT COUNT(*) FROM batches WHERE tenant = ?1) AS n`,
    )
      .bind(tenant)
      .first<{ n: number }>();
    expect(rows!.n).toBe(0);
  });
});
