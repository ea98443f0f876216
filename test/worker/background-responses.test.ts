// Background responses (POST /v1/responses with background: true) against sims that speak only chat
// completions: answered queued at once and polled to their end; streamed live and re-attached with
// starting_after to the same events; cancelled while queued or running, which stops the backend call.
import { SELF, env } from "cloudflare:test";
import { createParser } from "eventsource-parser";
import { beforeEach, describe, expect, it } from "vitest";
import {
  createTenant,
  eventually,
  expectError,
  expectedText,
  holder,
  oneSlot,
  release,
  resetSims,
  simConfig,
  simStats,
  untilStatus,
} from "./helpers";

beforeEach(resetSims);

const WAIT_MS = 60_000;
const ASK = "Say something deterministic.";
const USER = [{ role: "user", content: ASK }];

function responses(key: string, body: Record<string, unknown> | undefined, method = "POST", path = ""): Promise<Response> {
  return SELF.fetch(`https://sluice.test/v1/responses${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify({ model: "chat", input: ASK, ...body }),
  });
}
const get = (key: string, path: string) => responses(key, undefined, "GET", path);
const cancel = (key: string, id: string) => responses(key, undefined, "POST", `/${id}/cancel`);

async function events(res: Response): Promise<any[]> {
  expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
  const out: any[] = [];
  createParser({ onEvent: (e) => out.push(JSON.parse(e.data)) }).feed(await res.text());
  return out;
}

const until = (key: string, id: string, status: string) => untilStatus(() => get(key, `/${id}`), status);

describe("background responses", () => {
  it("answer queued at once, run as background work, and are polled to their end, which a next turn continues", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const res = await responses(key, { background: true });
    expect(res.status).toBe(200);
    const queued: any = await res.json();
    expect(queued).toMatchObject({ object: "response", status: "queued", background: true, output: [], usage: null });
    const done = await until(key, queued.id, "completed");
    expect(done).toMatchObject({ id: queued.id, background: true, output_text: expectedText(USER), created_at: queued.created_at });
    expect(done.usage.output_tokens).toBeGreaterThan(0);
    expect((await simStats("a")).requests).toBe(1);
    const next: any = await (await responses(key, { input: "And then?", previous_response_id: queued.id })).json();
    const conversation = [...USER, { role: "assistant", content: done.output_text }, { role: "user", content: "And then?" }];
    expect(next.output_text).toBe(expectedText(conversation));
  });

  it("stream live, and re-attach with starting_after to exactly the events after it: one generation", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const hold = `bg-${crypto.randomUUID()}`;
    const live = responses(key, { background: true, stream: true, sim_fault: { hold } });
    await eventually(async () => (await simStats("a")).held === 1, WAIT_MS);
    // Its stream starts with its first token; its id is in the tenant's store already.
    const row = await env.DB.prepare("SELECT id FROM responses WHERE tenant = ?").bind(tenant).first<{ id: string }>();
    const id = row!.id;
    const again = get(key, `/${id}?stream=true&starting_after=2`);
    await release(hold);
    const all = await events(await live);
    expect(all[0]).toMatchObject({ type: "response.created", response: { id, background: true } });
    expect(all.at(-1)).toMatchObject({ type: "response.completed", response: { status: "completed", output_text: expectedText(USER) } });
    expect(all.map((e) => e.sequence_number)).toEqual(all.map((_, i) => i));
    expect(await events(await again)).toEqual(all.slice(3));
    // Once ended, from the journal: the same events.
    expect(await events(await get(key, `/${id}?stream=true&starting_after=5`))).toEqual(all.slice(6));
    expect((await simStats("a")).requests).toBe(1);
    expect(await (await get(key, `/${id}`)).json()).toEqual(all.at(-1).response);
  });

  it("cancel a running response: its backend call stops, its stream ends response.failed after the partial output, and it stays cancelled", async () => {
    // The backend sends three tokens, then nothing until its call is dropped (no idle timeout ends it first).
    const { key } = await createTenant(simConfig(["a"], { timeouts: { idleMs: 600_000 } }));
    const queued: any = await (await responses(key, { background: true, sim_fault: { hang: true, hang_after: 3 } })).json();
    // A stream answers once output flows.
    const stream = await get(key, `/${queued.id}?stream=true`);
    const res = await cancel(key, queued.id);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: queued.id, status: "cancelled", background: true });
    const evs = await events(stream);
    expect(evs.filter((e) => e.type === "response.output_text.delta").length).toBeGreaterThan(0);
    expect(evs.at(-1)).toMatchObject({
      type: "response.failed",
      response: { status: "cancelled" },
      error: { code: "generation_cancelled" },
    });
    expect(evs.some((e) => e.type === "response.completed")).toBe(false);
    // The gate ended its lease: the Worker running it hears so at its next renewal and drops the backend call.
    await eventually(async () => (await simStats("a")).cancelled === 1, WAIT_MS);
    expect((await simStats("a")).completed).toBe(0);
    expect(await (await get(key, `/${queued.id}`)).json()).toMatchObject({ status: "cancelled" });
    expect(await (await cancel(key, queued.id)).json()).toMatchObject({ status: "cancelled" });
    const ended = await events(await get(key, `/${queued.id}?stream=true`));
    expect(ended.at(-1)).toMatchObject({ type: "response.failed", response: { status: "cancelled" } });
  });

  it("cancel a queued response: it never reaches a backend", async () => {
    const { key } = await createTenant(simConfig(["a"], oneSlot()));
    const hold = `slot-${crypto.randomUUID()}`;
    const blocking = holder(key, hold);
    await eventually(async () => (await simStats("a")).held === 1, WAIT_MS);
    const queued: any = await (await responses(key, { background: true })).json();
    expect(await (await cancel(key, queued.id)).json()).toMatchObject({ status: "cancelled" });
    await release(hold);
    expect((await blocking).status).toBe(200);
    // The slot is free again, and nothing of the cancelled response takes it.
    expect((await responses(key, {})).status).toBe(200);
    expect((await simStats("a")).requests).toBe(2);
    expect(await (await get(key, `/${queued.id}`)).json()).toMatchObject({ status: "cancelled", output: [] });
  });

  it("refuse what does not fit: store: false, cancelling or streaming a response not in the background, a turn after one still running", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    await expectError(await responses(key, { background: true, store: false }), 400, "invalid_request", /background/);
    const plain: any = await (await responses(key, {})).json();
    await expectError(await cancel(key, plain.id), 400, "response_not_cancellable");
    await expectError(await get(key, `/${plain.id}?stream=true`), 400, "response_not_streamable");
    await expectError(await cancel(key, "resp_nope"), 404, "response_not_found");
    const hold = `bg-${crypto.randomUUID()}`;
    const queued: any = await (await responses(key, { background: true, sim_fault: { hold } })).json();
    await expectError(await get(key, `/${queued.id}?stream=true&starting_after=x`), 400, "invalid_starting_after");
    await expectError(await responses(key, { previous_response_id: queued.id }), 400, "previous_response_in_progress");
    await eventually(async () => (await simStats("a")).held === 1, WAIT_MS);
    await release(hold);
    await until(key, queued.id, "completed");
    await expectError(await cancel(key, queued.id), 409, "response_ended");
  });
});
