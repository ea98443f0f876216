// The router with its gates in a workerd process of their own (startRouter's `gateProcess`, what
// `bench:cpu -- --gate-process` measures): requests are admitted by the gates' process, and a
// router whose gates' process is gone answers a clear 503, not a hang.
import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectedText } from "../../sim/text";
import { SimServer } from "../../sim/server";
import { startRouter, type RunningRouter } from "../../scripts/router-on-miniflare";
import { createTenantWithKey } from "../../scripts/tenant-admin";
import type { GateStats } from "../../src/gate/core/stats";

const ADMIN_TOKEN = "e2e-admin-token";
const KEY = "sk-e2e-gates-apart-0123456789";
const messages = [{ role: "user" as const, content: "Tell me about queues." }];

let sim: SimServer;
let router: RunningRouter;
let client: OpenAI;
const errors: string[] = [];

beforeAll(async () => {
  sim = new SimServer({ id: "use1", port: 0, tokensPerSecond: 400, firstTokenMs: 5 });
  await sim.listen();
  router = await startRouter({
    adminToken: ADMIN_TOKEN,
    gateProcess: true,
    vars: { CONFIG_CACHE_TTL_SECONDS: "1" },
    onLog: (level, message) => {
      if (level === "error") errors.push(message);
    },
  });
  const config = {
    backends: [{ id: "use1", region: "us-east", url: `http://127.0.0.1:${sim.port}/v1`, model: "llama-sim" }],
    models: { chat: { route: ["use1"] } },
  };
  await createTenantWithKey({ fetch, baseUrl: router.url, adminToken: ADMIN_TOKEN, name: "apart", config, key: KEY });
  client = new OpenAI({ apiKey: KEY, baseURL: `${router.url}/v1`, maxRetries: 0 });
});

afterAll(async () => {
  await router?.dispose();
  await sim?.close();
});

describe("gates in a process of their own", () => {
  it("streams exact text, admitted and settled by the gate in the gates' process", async () => {
    const stream = await client.chat.completions.create({ model: "chat", messages, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(expectedText({ model: "llama-sim", messages }));
    // The gate that counted it is the gates' process's own object.
    const namespace = await router.gates!.getDurableObjectNamespace("TENANT_GATE");
    const gate = namespace.get(namespace.idFromName("apart")) as unknown as { stats(): Promise<GateStats> };
    const stats = await gate.stats();
    expect(stats.tenant).toBe("apart");
    expect(stats.counters.completed).toBe(1);
    expect(stats.inFlight).toBe(0);
  });

  it("answers 503 gate_unavailable once the gates' process is gone; the cause goes to the log", async () => {
    await router.stopGates!();
    const err = await client.chat.completions.create({ model: "chat", messages, stream: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    const apiError = err as APIError;
    expect(apiError.status).toBe(503);
    expect(apiError.code).toBe("gate_unavailable");
    const requestId = apiError.headers?.get("x-request-id");
    expect(apiError.message).toContain(requestId);
    const logged = errors.map((line) => JSON.parse(line) as { requestId?: string; msg: string; error: string });
    const line = logged.find((l) => l.requestId === requestId);
    expect(line?.msg).toBe("tenant gate unavailable");
    expect(apiError.message).not.toContain(line!.error);
  });
});
