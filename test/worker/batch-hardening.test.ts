// What an outside attack found in files, batches and async generations: a filename too long for D1
// (and the R2 object it left behind), a batch cancelled before it started that stayed `cancelling`,
// and bodies nested too deep for the journal key's hash, at upload and in stored generations.
import { SELF, createExecutionContext, createMessageBatch, env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../../src/index";
import type { Env } from "../../src/env";
import { BatchStore } from "../../src/jobs/batches";
import { FileStore, MAX_FILENAME_CHARS } from "../../src/jobs/files";
import { GenerationStore } from "../../src/jobs/generations";
import type { JobMessage } from "../../src/jobs/messages";
import { recordDeadLetter } from "../../src/observe/dead-letters";
import { api, line, upload } from "./batch-helpers";
import { ADMIN, createTenant, expectError, resetSims, simConfig } from "./helpers";

beforeEach(resetSims);

/** Delivers `body` to the jobs consumer (or its dead-letter queue's) once, as the queue would. */
async function deliver(body: JobMessage, queue = "sluice-jobs"): Promise<void> {
  const messages = createMessageBatch<JobMessage>(queue, [{ id: crypto.randomUUID(), timestamp: new Date(), attempts: 1, body }]);
  await (worker as ExportedHandler<Env, JobMessage>).queue!(messages, env, createExecutionContext());
}

const objectsOf = async (tenant: string) => (await env.FILES.list({ prefix: `${tenant}/` })).objects.map((o) => o.key);

/** A body nested `depth` arrays deep, as JSON text (built as text: stringifying it would overflow the stack). */
const deepJson = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

describe("file names", () => {
  it(`are at most ${MAX_FILENAME_CHARS} characters: a longer one is a 400 naming the limit, and leaves nothing in R2`, async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    await expectError(await upload(key, [line("a")], "batch", "n".repeat(3_000_000)), 400, "filename_too_long", /at most 255 characters/);
    await expectError(await upload(key, [line("a")], "batch", "n".repeat(MAX_FILENAME_CHARS + 1)), 400, "filename_too_long");
    expect(await objectsOf(tenant)).toEqual([]);
    const fine = await upload(key, [line("a")], "batch", "n".repeat(MAX_FILENAME_CHARS));
    expect(fine.status).toBe(200);
    expect(((await fine.json()) as any).filename).toHaveLength(MAX_FILENAME_CHARS);
  });

  it("never leave an object in R2 without its row: a row the database refuses stores no bytes", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const store = new FileStore(env.DB, env.FILES, tenant);
    const bytes = new TextEncoder().encode(line("a"));
    await expect(store.create({ filename: "n".repeat(3_000_000), purpose: "batch", bytes, lines: 1 }, Date.now())).rejects.toThrow();
    expect(await objectsOf(tenant)).toEqual([]);
    expect(await store.usedBytes(Date.now())).toBe(0);
  });
});

describe("a batch cancelled before it started", () => {
  it("ends cancelled, not cancelling for ever, when its input file is gone by the time it starts", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const file = (await (await upload(key, [line("only")])).json()) as { id: string };
    // Made directly, so the test delivers the start message itself, after the cancel and the delete.
    const batch = await new BatchStore(env.DB, tenant).create(
      { inputFileId: file.id, total: 1, metadata: null, windowMs: 3_600_000 },
      Date.now(),
    );
    expect(((await (await api(key, `batches/${batch.id}/cancel`, { method: "POST" })).json()) as any).status).toBe("cancelling");
    expect((await api(key, `files/${file.id}`, { method: "DELETE" })).status).toBe(200);
    await deliver({ kind: "start", tenant, batchId: batch.id, from: 0 });
    const ended: any = await (await api(key, `batches/${batch.id}`)).json();
    expect(ended).toMatchObject({ status: "cancelled", errors: { data: [{ code: "input_file_missing" }] } });
    expect(ended.cancelled_at).toBeGreaterThan(0);
    expect(await new BatchStore(env.DB, tenant).openCount()).toBe(0);
  });

  it("ends cancelled when its start or finalize step fails every delivery, and a running one ends failed", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const store = new BatchStore(env.DB, tenant);
    const file = (await (await upload(key, [line("only")])).json()) as { id: string };
    const create = () => store.create({ inputFileId: file.id, total: 1, metadata: null, windowMs: 3_600_000 }, Date.now());
    const cancelled = await create();
    await store.cancel(cancelled.id, Date.now());
    const running = await create();
    await store.started(running.id, Date.now());
    for (const id of [cancelled.id, running.id]) await deliver({ kind: "start", tenant, batchId: id, from: 0 }, "sluice-jobs-dead");
    expect((await store.get(cancelled.id))?.status).toBe("cancelled");
    expect((await store.get(running.id))?.status).toBe("failed");
    expect(await store.openCount()).toBe(0);
  });
});

describe("bodies nested too deep", () => {
  it("are refused at upload, line by line, as the chat route refuses them", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const deep = line("b", { user_data: 0 }).replace('"user_data":0', `"user_data":${deepJson(20_000)}`);
    await expectError(
      await upload(key, [line("a"), deep]),
      400,
      "invalid_file",
      /^Invalid batch file: line 2: nests objects or arrays more than 64 deep\.$/,
    );
  });

  it("in a generation stored before the check: its stream answers a state, never a 500, and its job ends it failed", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const request = JSON.parse(`{"model":"chat","messages":[{"role":"user","content":"x"}],"user_data":${deepJson(20_000)}}`);
    const generation = await new GenerationStore(env.DB, tenant).create(request, Date.now());
    await expectError(await api(key, `generations/${generation.id}/stream`), 409, "generation_not_streamable");
    await deliver({ kind: "generate", tenant, generationId: generation.id });
    const ended: any = await (await api(key, `generations/${generation.id}`)).json();
    expect(ended).toMatchObject({ status: "failed", response: { status_code: 400, body: { error: { code: "json_too_deep" } } } });
    const stream = await api(key, `generations/${generation.id}/stream`);
    expect(stream.status).toBe(200);
    expect(await stream.text()).toContain('"code":"json_too_deep"');
  });

  it("in a dead letter written before the check: a redrive is a 400, not a generation that can never run", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const request = JSON.parse(`{"model":"chat","messages":[{"role":"user","content":"x"}],"user_data":${deepJson(20_000)}}`);
    await recordDeadLetter(env.DB, {
      tenant,
      requestId: "old-line",
      model: "chat",
      status: 502,
      code: "line_failed",
      message: "old",
      partial: false,
      attempts: [],
      createdAt: Date.now(),
      traceId: null,
      request,
    });
    const letters: any = await (await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/dead-letters`, { headers: ADMIN })).json();
    const id = letters.data[0].id;
    await expectError(
      await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/dead-letters/${id}/redrive`, { method: "POST", headers: ADMIN }),
      400,
      "json_too_deep",
    );
  });
});
