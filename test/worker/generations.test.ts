// Async generations and dead letters run again: Prefer: respond-async answers 202 and the request
// runs as background work; its stream can be re-attached, live, with Last-Event-ID; a dead letter is
// redriven once its backend is back.
import { SELF } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ADMIN,
  chat,
  createTenant,
  eventually,
  expectError,
  expectedText,
  MESSAGES,
  RECEIVER,
  readSse,
  received,
  release,
  resetSims,
  signingSecret,
  simConfig,
  simControl,
  simStats,
  untilStatus,
} from "./helpers";

beforeEach(resetSims);

const WAIT_MS = 60_000;

const api = (key: string, path: string, headers: Record<string, string> = {}) =>
  SELF.fetch(`https://sluice.test/v1/${path}`, { headers: { authorization: `Bearer ${key}`, ...headers } });
const admin = (path: string, init: RequestInit = {}) =>
  SELF.fetch(`https://sluice.test/admin/tenants/${path}`, { ...init, headers: { ...ADMIN, "content-type": "application/json" } });

async function startAsync(key: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<string> {
  const res = await chat(key, { model: "chat", messages: MESSAGES, ...body }, { prefer: "respond-async", ...headers });
  expect(res.status).toBe(202);
  const generation = (await res.json()) as { id: string; status: string };
  expect(res.headers.get("location")).toBe(`/v1/generations/${generation.id}`);
  expect(res.headers.get("preference-applied")).toBe("respond-async");
  expect(generation.status).toBe("queued");
  return generation.id;
}

describe("async generations", () => {
  it("answer 202 at once, run in the background, and keep the answer", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const id = await startAsync(key);
    const done = await untilStatus(() => api(key, `generations/${id}`), "completed");
    expect(done.response.status_code).toBe(200);
    expect(done.response.body.choices[0].message.content).toBe(expectedText());
    expect(done.completed_at).toBeGreaterThanOrEqual(done.created_at);
    expect((await simStats("a")).requests).toBe(1);
    // What the same request answered at once would have been: its usage too, the backend's counts.
    const now: any = await (await chat(key, { model: "chat", messages: MESSAGES })).json();
    expect(now.usage.completion_tokens).toBeGreaterThan(0);
    expect(done.response.body.usage).toEqual(now.usage);
  });

  it("re-attach as SSE while running, and resume with Last-Event-ID: one generation, the exact text", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const hold = `gen-${crypto.randomUUID()}`;
    const id = await startAsync(key, { sim_fault: { hold, slow_after: 4, slow_ms: 30 } });
    await eventually(async () => (await simStats("a")).held === 1, WAIT_MS);
    // Attached while the generation waits for its first token; the first four events, then gone.
    // The stream answers once output flows: asked for, then the generation let go.
    const attached = api(key, `generations/${id}/stream`);
    await release(hold);
    const first = await attached;
    expect(first.status).toBe(200);
    expect(first.headers.get("x-sluice-replay")).toBe("joined");
    const reader = first.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      text += value ?? "";
      if (done || (text.match(/^id: /gm) ?? []).length >= 4) break;
    }
    await reader.cancel();
    const head = await readSse(new Response(text.slice(0, text.lastIndexOf("\n\n") + 2)));
    const lastId = head.events.at(-1)!.id!;
    // Back with Last-Event-ID: the rest, live or stored, never generated again.
    const rest = await readSse(await api(key, `generations/${id}/stream`, { "last-event-id": lastId }));
    expect(head.text + rest.text).toBe(expectedText());
    expect(rest.done).toBe(true);
    await untilStatus(() => api(key, `generations/${id}`), "completed");
    expect((await simStats("a")).requests).toBe(1);
  });

  it("are the tenant's own", async () => {
    const a = await createTenant(simConfig(["a"]));
    const b = await createTenant(simConfig(["a"]));
    const id = await startAsync(a.key);
    await expectError(await api(b.key, `generations/${id}`), 404, "generation_not_found");
    await expectError(await api(b.key, `generations/${id}/stream`), 404, "generation_not_found");
    await untilStatus(() => api(a.key, `generations/${id}`), "completed");
  });

  it("cancel: a running one stops at its backend and its stream ends generation_cancelled; an ended one cannot be", async () => {
    const { key } = await createTenant(simConfig(["a"], { timeouts: { idleMs: 600_000 } }));
    // Three tokens, then nothing until the call is dropped.
    const id = await startAsync(key, { sim_fault: { hang: true, hang_after: 3 } });
    const stream = await api(key, `generations/${id}/stream`);
    const cancel = (which: string) =>
      SELF.fetch(`https://sluice.test/v1/generations/${which}/cancel`, { method: "POST", headers: { authorization: `Bearer ${key}` } });
    const res = await cancel(id);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, status: "cancelled", response: { status_code: 409 } });
    const seen = await readSse(stream);
    expect(seen.text.length).toBeGreaterThan(0);
    expect(seen.error).toMatchObject({ error: { code: "generation_cancelled" }, partial: true });
    expect(seen.done).toBe(false);
    await eventually(async () => (await simStats("a")).cancelled === 1, WAIT_MS);
    expect(await (await api(key, `generations/${id}`)).json()).toMatchObject({ status: "cancelled" });
    expect((await cancel(id)).status).toBe(200);
    await expectError(await cancel("gen_nope"), 404, "generation_not_found");
    const done = await startAsync(key);
    await untilStatus(() => api(key, `generations/${done}`), "completed");
    await expectError(await cancel(done), 409, "generation_ended");
  });
});

describe("generation webhooks", () => {
  /** A tenant with two webhooks, "named" and "default", the second its generationWebhook. */
  async function hookedTenant() {
    const named = `/hooks/named-${crypto.randomUUID()}`;
    const fallback = `/hooks/default-${crypto.randomUUID()}`;
    const webhooks = [
      { id: "named", url: `${RECEIVER}${named}` },
      { id: "default", url: `${RECEIVER}${fallback}` },
    ];
    const tenant = await createTenant(
      simConfig(["a"], { alerts: { webhooks, generationWebhook: "default" }, outbound: { allowPrivateHosts: true } }),
    );
    return { ...tenant, named, fallback };
  }

  /** The messages `path` received, each verified as a receiver would, with the Standard Webhooks library. */
  async function verified(tenant: string, path: string): Promise<any[]> {
    const hook = new Webhook(await signingSecret(tenant));
    return (await received(path)).map((r) => ({ ...(hook.verify(r.body, r.headers) as object), webhookId: r.headers["webhook-id"] }));
  }

  it("tell the webhook a request named, signed, once the generation ended; the tenant's default when it names none", async () => {
    const { tenant, key, named, fallback } = await hookedTenant();
    const id = await startAsync(key, {}, { "sluice-webhook": "named" });
    await eventually(async () => (await received(named)).length === 1, WAIT_MS);
    const [message] = await verified(tenant, named);
    expect(message).toMatchObject({
      type: "generation.completed",
      webhookId: id,
      data: { tenant, generation: id, statusCode: 200 },
    });
    // The link in the message answers with the completed generation.
    expect(message.data.url).toMatch(new RegExp(`/v1/generations/${id}$`));
    const done = (await (await api(key, `generations/${id}`)).json()) as any;
    expect(done.status).toBe("completed");
    expect(done.response.body.choices[0].message.content).toBe(expectedText());

    const other = await startAsync(key);
    await eventually(async () => (await received(fallback)).length === 1, WAIT_MS);
    expect((await verified(tenant, fallback))[0]).toMatchObject({ type: "generation.completed", data: { generation: other } });
    expect(await received(named)).toHaveLength(1);
  });

  it("tell a failed generation's end as generation.failed, with its status; 'none' tells nobody", async () => {
    const { tenant, key, fallback } = await hookedTenant();
    const silent = await startAsync(key, {}, { "sluice-webhook": "none" });
    await untilStatus(() => api(key, `generations/${silent}`), "completed");
    const failing = await startAsync(key, { sim_fault: { status: 400 } });
    const failed = await untilStatus(() => api(key, `generations/${failing}`), "failed");
    await eventually(async () => (await received(fallback)).length >= 1, WAIT_MS);
    const messages = await verified(tenant, fallback);
    expect(messages.map((m) => m.data.generation)).toEqual([failing]);
    expect(messages[0]).toMatchObject({ type: "generation.failed", data: { statusCode: failed.response.status_code } });
    expect(failed.response.status_code).toBeGreaterThanOrEqual(400);
  });

  it("refuse a Sluice-Webhook that names none of the tenant's webhooks, and a generationWebhook that is not one", async () => {
    const { tenant, key } = await hookedTenant();
    await expectError(
      await chat(key, { model: "chat", messages: MESSAGES }, { prefer: "respond-async", "sluice-webhook": "pager" }),
      400,
      "unknown_webhook",
    );
    await expectError(
      await admin(tenant, { method: "PATCH", body: JSON.stringify({ alerts: { generationWebhook: "pager" } }) }),
      400,
      "invalid_request",
      /alerts\.generationWebhook: unknown webhook "pager"/,
    );
  });
});

describe("dead letters run again", () => {
  it("a request that failed while its backend was down is redriven once the backend is back, and succeeds", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"], { retry: { maxAttempts: 1 } }));
    await simControl("a", { failRate: 1 });
    await expectError(await chat(key, { model: "chat", messages: MESSAGES }), 502, "max_attempts");
    // The dead letter is written as the failed request ends, just after its answer.
    let letter: any;
    await eventually(
      async () => ([letter] = ((await (await admin(`${tenant}/dead-letters`)).json()) as any).data) !== undefined && letter !== undefined,
    );
    expect(letter).toMatchObject({ code: "max_attempts", redrivable: true });
    await simControl("a", { failRate: 0 });
    const res = await admin(`${tenant}/dead-letters/${letter.id}/redrive`, { method: "POST" });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const done = await untilStatus(() => admin(`${tenant}/generations/${id}`), "completed");
    expect(done.response.body.choices[0].message.content).toBe(expectedText());
    expect(done.response.body.usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
    expect(done.response.body.usage.completion_tokens).toBeGreaterThan(0);
  });

  it("a redriven letter whose request still fails is tried in one delivery, then is a dead letter again", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"], { retry: { maxAttempts: 2, baseDelayMs: 1 } }));
    await simControl("a", { failRate: 1 });
    await expectError(await chat(key, { model: "chat", messages: MESSAGES }), 502, "max_attempts");
    const letters = async () => ((await (await admin(`${tenant}/dead-letters`)).json()) as any).data as any[];
    await eventually(async () => (await letters()).length === 1);
    const [letter] = await letters();
    const before = (await simStats("a")).requests;
    const res = await admin(`${tenant}/dead-letters/${letter.id}/redrive`, { method: "POST" });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const failed = await untilStatus(() => admin(`${tenant}/generations/${id}`), "failed");
    expect(failed.response.body.error.code).toBe("generation_failed");
    expect(failed.response.body.error.message).toMatch(/redriven request failed again/);
    // One delivery's attempts (maxAttempts), not one per queue retry.
    expect((await simStats("a")).requests - before).toBe(2);
    await eventually(async () => (await letters()).length === 2);
    expect((await letters())[0]).toMatchObject({ requestId: id, code: "generation_failed", redrivable: true });
  });

  it("redrives every letter a filter matches; one whose request was not kept is refused with 409", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"], { retry: { maxAttempts: 1 } }));
    await simControl("a", { failRate: 1 });
    for (let i = 0; i < 2; i++) await expectError(await chat(key, { model: "chat", messages: MESSAGES }), 502, "max_attempts");
    const letters = async () => ((await (await admin(`${tenant}/dead-letters`)).json()) as any).data as any[];
    await eventually(async () => (await letters()).length === 2);
    await simControl("a", { failRate: 0 });
    const res = await admin(`${tenant}/dead-letters/redrive`, {
      method: "POST",
      body: JSON.stringify({ code: "max_attempts", backend: "a" }),
    });
    expect(res.status).toBe(202);
    const bulk = (await res.json()) as any;
    expect(bulk.data).toHaveLength(2);
    expect(bulk.not_kept).toEqual([]);
    for (const { generation_id } of bulk.data) await untilStatus(() => admin(`${tenant}/generations/${generation_id}`), "completed");
    const none = (await (
      await admin(`${tenant}/dead-letters/redrive`, { method: "POST", body: JSON.stringify({ backend: "b" }) })
    ).json()) as any;
    expect(none.data).toEqual([]);

    // With deadLetters.keepRequests off, a letter keeps no body, and cannot be run again.
    expect((await admin(tenant, { method: "PATCH", body: JSON.stringify({ deadLetters: { keepRequests: false } }) })).status).toBe(200);
    await simControl("a", { failRate: 1 });
    await expectError(await chat(key, { model: "chat", messages: MESSAGES }), 502, "max_attempts");
    await eventually(async () => (await letters()).length === 3);
    const [latest] = await letters();
    expect(latest.redrivable).toBe(false);
    await expectError(await admin(`${tenant}/dead-letters/${latest.id}/redrive`, { method: "POST" }), 409, "request_not_kept");
    await expectError(await admin(`${tenant}/dead-letters/999999/redrive`, { method: "POST" }), 404, "dead_letter_not_found");
  });
});
