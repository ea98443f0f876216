// POST /v1/responses (OpenAI Responses) against sims that speak only chat completions: answers and
// streams in the Responses API's events, function tools, stored responses and previous_response_id,
// and chat's promises in this API's shapes: exact resume, response.failed after a cut that cannot be
// resumed, replay and joining by Idempotency-Key, the queue's 429 and the breakers' 503, a deleted
// tenant's stored responses gone.
import { SELF, env } from "cloudflare:test";
import { createParser } from "eventsource-parser";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ADMIN,
  createTenant,
  eventually,
  expectError,
  expectedText,
  gateStats,
  holder,
  release,
  resetSims,
  resumableConfig,
  simConfig,
  simControl,
  simStats,
} from "./helpers";

beforeEach(resetSims);

const ASK = "Say something deterministic.";
const USER = [{ role: "user", content: ASK }];

function responses(key: string, body: Record<string, unknown>, method = "POST", path = ""): Promise<Response> {
  return SELF.fetch(`https://sluice.test/v1/responses${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: method === "POST" ? JSON.stringify({ model: "chat", input: ASK, ...body }) : undefined,
  });
}

async function events(res: Response): Promise<any[]> {
  const out: any[] = [];
  createParser({ onEvent: (e) => out.push(JSON.parse(e.data)) }).feed(await res.text());
  return out;
}
const textOf = (evs: any[]) =>
  evs
    .filter((e) => e.type === "response.output_text.delta")
    .map((e) => e.delta)
    .join("");

describe("POST /v1/responses", () => {
  it("answers a response, and streams one in the Responses API's events", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const response: any = await (await responses(key, {})).json();
    expect(response).toMatchObject({ object: "response", status: "completed", output_text: expectedText(USER), store: true });
    expect(response.id).toMatch(/^resp_/);
    expect(response.usage.output_tokens).toBeGreaterThan(0);
    const evs = await events(await responses(key, { stream: true }));
    expect(evs[0].type).toBe("response.created");
    expect(evs.at(-1)).toMatchObject({ type: "response.completed", response: { status: "completed", output_text: expectedText(USER) } });
    expect(textOf(evs)).toBe(expectedText(USER));
    expect(evs.map((e) => e.sequence_number)).toEqual(evs.map((_, i) => i));
  });

  it("continues a stored conversation with previous_response_id; GET and DELETE a stored response; store: false keeps none", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const first: any = await (await responses(key, {})).json();
    expect((await (await responses(key, {}, "GET", `/${first.id}`)).json()) as any).toEqual(first);
    const next = "And then?";
    const second: any = await (await responses(key, { input: next, previous_response_id: first.id })).json();
    // The sim answers the whole conversation: the first turn, its answer, the new input.
    const conversation = [...USER, { role: "assistant", content: first.output_text }, { role: "user", content: next }];
    expect(second.output_text).toBe(expectedText(conversation));
    expect(second.previous_response_id).toBe(first.id);
    await expectError(await responses(key, { previous_response_id: "resp_nope" }), 404, "previous_response_not_found");
    const unstored: any = await (await responses(key, { store: false })).json();
    await expectError(await responses(key, {}, "GET", `/${unstored.id}`), 404, "response_not_found");
    expect((await (await responses(key, {}, "DELETE", `/${first.id}`)).json()) as any).toEqual({
      id: first.id,
      object: "response",
      deleted: true,
    });
    await expectError(await responses(key, {}, "GET", `/${first.id}`), 404, "response_not_found");
    await expectError(await responses(key, { previous_response_id: first.id }), 404, "previous_response_not_found");
  });

  it("offers function tools: the backend's calls come back as function_call items; a built-in tool is a 400 naming it", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const tools = [{ type: "function", name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } } } }];
    const response: any = await (await responses(key, { tools })).json();
    const calls = response.output.filter((i: any) => i.type === "function_call");
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      expect(call.name).toBe("lookup");
      expect(typeof JSON.parse(call.arguments)).toBe("object");
    }
    const next = await responses(key, {
      tools,
      previous_response_id: response.id,
      input: calls.map((c: any) => ({ type: "function_call_output", call_id: c.call_id, output: "found" })),
    });
    expect(next.status).toBe(200);
    await expectError(await responses(key, { tools: [{ type: "web_search" }] }), 400, "invalid_request", /built-in tool "web_search"/);
  });

  it("resumes a cut stream exactly on a resumable route; with nowhere to resume, ends with response.failed, never response.completed", async () => {
    const resumable = await createTenant(resumableConfig(["a", "b"]));
    const resumed = await events(await responses(resumable.key, { stream: true, sim_fault: { backend: "a", disconnect_after: 4 } }));
    expect(textOf(resumed)).toBe(expectedText(USER));
    expect(resumed.at(-1).type).toBe("response.completed");
    const plain = await createTenant(simConfig(["a"], { retry: { maxAttempts: 1 } }));
    const broken = await events(await responses(plain.key, { stream: true, sim_fault: { disconnect_after: 4 } }));
    const text = textOf(broken);
    expect(text.length).toBeGreaterThan(0);
    expect(expectedText(USER).startsWith(text)).toBe(true);
    expect(broken.at(-1)).toMatchObject({
      type: "response.failed",
      response: { status: "failed" },
      error: { code: "no_resumable_backend" },
      partial: true,
    });
    expect(broken.some((e) => e.type === "response.completed")).toBe(false);
  });

  it("replays by Idempotency-Key without a backend call, and is held to the tenant's rate limits", async () => {
    const { key } = await createTenant(simConfig(["a"], { limits: { requestsPerMinute: 2 } }));
    const keyed = (body: Record<string, unknown>) =>
      SELF.fetch("https://sluice.test/v1/responses", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "idempotency-key": "resp-once" },
        body: JSON.stringify({ model: "chat", input: ASK, ...body }),
      });
    const first: any = await (await keyed({})).json();
    const again = await keyed({ stream: true });
    expect(again.headers.get("x-sluice-replay")).toMatch(/stored|joined/);
    expect(textOf(await events(again))).toBe(first.output_text);
    expect((await simStats("a")).requests).toBe(1);
    // A replay calls no backend and is not counted: two fresh requests use the minute's two.
    await (await responses(key, {})).arrayBuffer();
    const limited = await responses(key, {});
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await expectError(limited, 429, "rate_limited");
  });

  it("joins a live generation by Idempotency-Key: one backend call, both clients get the whole response", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const hold = `resp-join-${crypto.randomUUID()}`;
    const keyed = (body: Record<string, unknown>) =>
      SELF.fetch("https://sluice.test/v1/responses", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "idempotency-key": "resp-join" },
        body: JSON.stringify({ model: "chat", input: ASK, store: false, ...body }),
      });
    const first = keyed({ stream: true, sim_fault: { hold, tps: 10 } });
    await eventually(async () => (await simStats("a")).held === 1);
    // The first then takes four seconds to answer (10 tokens a second): the second arrives while it runs.
    const second = keyed({ stream: true, sim_fault: { hold, tps: 10 } });
    await release(hold);
    const [a, b] = await Promise.all([first, second]);
    expect(b.headers.get("x-sluice-replay")).toBe("joined");
    for (const evs of await Promise.all([events(a), events(b)])) {
      expect(textOf(evs)).toBe(expectedText(USER));
      expect(evs.at(-1)).toMatchObject({ type: "response.completed" });
    }
    expect((await simStats("a")).requests).toBe(1);
  });

  it("tells a full queue as 429 with Retry-After, and every breaker open as 503, in OpenAI's shape", async () => {
    const { tenant, key } = await createTenant(
      simConfig(["a"], {
        limits: { maxConcurrency: 1, maxQueue: 0 },
        retry: { maxAttempts: 1 },
        breaker: { consecutiveFailures: 1, cooldownMs: 60_000 },
      }),
    );
    const held = holder(key, "resp-full");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1 && (await simStats("a")).held === 1);
    const full = await responses(key, {});
    expect(Number(full.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await expectError(full, 429, "queue_full");
    await release("resp-full");
    await (await held).arrayBuffer();
    await simControl("a", { failRate: 1, failStatus: 503 });
    await responses(key, {}).then((r) => r.arrayBuffer());
    const open = await responses(key, { stream: true });
    expect(Number(open.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await expectError(open, 503, "no_backend_available");
  });

  it("a deleted tenant's stored responses are gone", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    await (await responses(key, {})).arrayBuffer();
    const count = async () =>
      (await env.DB.prepare(`SELECT COUNT(*) AS n FROM responses WHERE tenant = ?`).bind(tenant).first<{ n: number }>())!.n;
    // Stored before the answer reached the client.
    expect(await count()).toBe(1);
    expect((await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
    expect(await count()).toBe(0);
    expect((await simStats("a")).requests).toBe(1);
  });
});
