// The request log: one JSON line per request, written when it ends, with each attempt's story and
// no prompt or completion text. The Worker runs in this isolate, so its console is the test's.
import { env, SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { RequestLine } from "../../src/observe/request-log";
import { requestDataPoint } from "../../src/observe/analytics";
import {
  chat,
  createTenant,
  eventually,
  expectedText,
  gateStats,
  holder,
  MESSAGES,
  oneSlot,
  readSse,
  release,
  resetSims,
  resumableConfig,
  simConfig,
  simStats,
  ADMIN,
  captureRequestLines,
  lineOf as lineIn,
} from "./helpers";

let lines: RequestLine[] = [];

beforeEach(async () => {
  await resetSims();
  lines = captureRequestLines();
});

/** The log line of the request with this id, once written (a streamed answer's comes when it ends). */
const lineOf = (res: Response) => lineIn(lines, res);

describe("request log line", () => {
  it("tells a streamed request's attempts: a failed one on a backend, then the one that answered", async () => {
    const { tenant, key } = await createTenant(simConfig(["a", "b"]));
    const res = await chat(
      key,
      {
        model: "chat",
        messages: MESSAGES,
        stream: true,
        stream_options: { include_usage: true },
        sim_fault: { backend: "a", status: 503 },
      },
      { "x-priority": "high" },
    );
    expect((await readSse(res)).text).toBe(expectedText());
    const line = await lineOf(res);
    expect(line).toMatchObject({
      level: "info",
      method: "POST",
      path: "/v1/chat/completions",
      tenant,
      model: "chat",
      priority: "high",
      outcome: "complete",
      status: 200,
      backend: "b",
    });
    expect(line.code).toBeUndefined();
    expect(line.attempts).toEqual([
      expect.objectContaining({
        attempt: 1,
        backend: "a",
        region: "us-east",
        // simConfig's routes list their backends in a fixed order.
        route: "pinned",
        continuation: false,
        outcome: "failure",
        httpStatus: 503,
        chunks: 0,
      }),
      expect.objectContaining({ attempt: 2, backend: "b", region: "eu-west", route: "retry", continuation: false, outcome: "success" }),
    ]);
    expect(line.attempts[0]!.code).toMatch(/^upstream_/);
    expect(line.attempts[1]!.chunks).toBeGreaterThan(0);
    expect(line.completionTokens).toBeGreaterThan(0);
    expect(line.promptTokens).toBeGreaterThan(0);
    expect(line.ttftMs).toBeGreaterThanOrEqual(0);
    expect(line.totalMs).toBeGreaterThanOrEqual(line.ttftMs!);
    // Neither the prompt nor the answer is logged.
    const text = JSON.stringify(line);
    expect(text).not.toContain(MESSAGES[0]!.content);
    expect(text).not.toContain(expectedText().slice(0, 20));
  });

  it("marks a continuation, and a partial answer with its code and a warning level", async () => {
    const { key } = await createTenant(resumableConfig(["a", "b"]));
    const resumed = await chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: { backend: "a", disconnect_after: 4 } });
    expect((await readSse(resumed)).text).toBe(expectedText());
    const continued = await lineOf(resumed);
    expect(continued.outcome).toBe("complete");
    expect(continued.attempts.map((a) => [a.backend, a.continuation, a.outcome])).toEqual([
      ["a", false, "failure"],
      ["b", true, "success"],
    ]);

    const { key: fragile } = await createTenant(simConfig(["a"], { retry: { maxAttempts: 1 } }));
    const partial = await chat(fragile, { model: "chat", messages: MESSAGES, stream: true, sim_fault: { disconnect_after: 3 } });
    expect((await readSse(partial)).error).toBeDefined();
    expect(await lineOf(partial)).toMatchObject({ level: "warn", outcome: "partial", status: 200, completionTokens: 3 });
  });

  it("writes one line for a refusal at every stage: auth, validation, a full queue", async () => {
    const unauthenticated = await chat("sk-nobody", { model: "chat", messages: MESSAGES });
    expect(await lineOf(unauthenticated)).toMatchObject({ outcome: "rejected", status: 401, code: "invalid_api_key", attempts: [] });

    const { tenant, key } = await createTenant(oneSlot({ maxQueue: 0 }));
    const invalid = await chat(key, { model: "chat", messages: "not a list" });
    expect(await lineOf(invalid)).toMatchObject({ outcome: "rejected", status: 400, code: "invalid_request", tenant });

    const held = holder(key, "request-log-full");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const full = await chat(key, { model: "chat", messages: MESSAGES });
    expect(full.status).toBe(429);
    expect(await lineOf(full)).toMatchObject({ outcome: "rejected", status: 429, code: "queue_full", tenant, model: "chat", attempts: [] });
    await release("request-log-full");
    expect(await lineOf(await held)).toMatchObject({ outcome: "complete", status: 200 });
  });

  it("writes the line's figures to Analytics Engine as one data point, when bound", async () => {
    const points: AnalyticsEngineDataPoint[] = [];
    vi.spyOn(env.ANALYTICS!, "writeDataPoint").mockImplementation((p) => void points.push(p!));
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const line = await lineOf(res);
    expect(points).toContainEqual(requestDataPoint(line));
    expect(requestDataPoint(line).indexes).toEqual([tenant]);
  });

  it("names the surface in the line, and the tenant's counters count each surface's requests apart", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const post = (path: string, body: Record<string, unknown>) =>
      SELF.fetch(`https://sluice.test/v1/${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "chat", ...body }),
      });
    const asked = {
      chat: await chat(key, { model: "chat", messages: MESSAGES }),
      messages: await post("messages", { max_tokens: 32, messages: MESSAGES }),
      responses: await post("responses", { input: "Hello", store: false }),
      embeddings: await post("embeddings", { input: "Hello" }),
    };
    for (const [surface, res] of Object.entries(asked)) {
      expect(res.status, surface).toBe(200);
      await res.arrayBuffer();
      expect((await lineOf(res)).surface).toBe(surface);
    }
    const { surfaces } = await gateStats(tenant);
    for (const surface of Object.keys(asked)) expect(surfaces[surface], surface).toMatchObject({ admitted: 1, completed: 1, failed: 0 });
  });

  it("writes a line for every other route too", async () => {
    const res = await SELF.fetch("https://sluice.test/healthz");
    expect(await lineOf(res)).toMatchObject({ method: "GET", path: "/healthz", outcome: "complete", status: 200, attempts: [] });
    const missing = await SELF.fetch("https://sluice.test/nowhere");
    expect(await lineOf(missing)).toMatchObject({ outcome: "rejected", status: 404, code: "not_found" });
  });
});

describe("trace context", () => {
  const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  const PARENT = "00f067aa0ba902b7";
  const spanOf = (traceparent: string | undefined, trace: string) => traceparent?.match(new RegExp(`^00-${trace}-([0-9a-f]{16})-01$`))?.[1];

  it("names background work for what it is: an async generation's run logs as JOB generation <id>, not a route", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES }, { prefer: "respond-async" });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await eventually(async () => lines.some((l) => l.method === "JOB"), 60_000);
    expect(lines.find((l) => l.method === "JOB")).toMatchObject({ path: `generation ${id}`, tenant, outcome: "complete", status: 200 });
  });

  it("continues the client's trace into every backend attempt, a span each, and says so", async () => {
    const { key } = await createTenant(simConfig(["a", "b"]));
    const res = await chat(
      key,
      { model: "chat", messages: MESSAGES, stream: true, sim_fault: { backend: "a", status: 503 } },
      { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: "congo=t61rcWkgMzE" },
    );
    expect(res.headers.get("x-sluice-trace-id")).toBe(TRACE);
    expect((await readSse(res)).text).toBe(expectedText());
    const [onA, onB] = [(await simStats("a")).traceparents, (await simStats("b")).traceparents];
    expect(onA).toHaveLength(1);
    expect(onB).toHaveLength(1);
    const spans = [spanOf(onA[0], TRACE), spanOf(onB[0], TRACE)];
    expect(spans[0]).toBeDefined();
    expect(spans[1]).toBeDefined();
    expect(new Set([...spans, PARENT]).size).toBe(3);
    const line = await lineOf(res);
    expect(line.traceId).toBe(TRACE);
    expect(line.attempts.map((a) => a.spanId)).toEqual(spans);
  });

  it("starts a trace when the client sent none (or an invalid one), and puts it in the dead letter", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"], { retry: { maxAttempts: 1 } }));
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { status: 500 } }, { traceparent: "00-nonsense" });
    expect(res.status).toBe(502);
    const trace = res.headers.get("x-sluice-trace-id")!;
    expect(trace).toMatch(/^[0-9a-f]{32}$/);
    expect(spanOf((await simStats("a")).traceparents[0], trace)).toBeDefined();
    await eventually(async () => {
      const dead: any = await (await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/dead-letters`, { headers: ADMIN })).json();
      return dead.data.length === 1 && dead.data[0].traceId === trace;
    });
    // Every other response carries one too.
    expect((await SELF.fetch("https://sluice.test/healthz")).headers.get("x-sluice-trace-id")).toMatch(/^[0-9a-f]{32}$/);
  });
});
