// What an attacker, a broken backend and a careless admin found (issue 13), each provoked for real:
// rogue backends are a real HTTP server (test/setup/rogue-backend.ts) that misbehaves on purpose.
import { env, SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import type { TenantConfigInput } from "../../src/config/schema";
import type { RogueBehaviour, RogueStats } from "../setup/rogue-types";
import {
  ADMIN,
  chat,
  createTenant,
  eventually,
  expectedText,
  expectError,
  gateStats,
  MESSAGES,
  readSse,
  resetSims,
  simConfig,
  simStats,
  simUrl,
  type TestConfig,
} from "./helpers";

const rogueBase = `http://127.0.0.1:${env.ROGUE_PORT}`;
const rogueStats = async (): Promise<RogueStats> => (await fetch(`${rogueBase}/stats`)).json();

beforeEach(async () => {
  await resetSims();
  await (await fetch(`${rogueBase}/stats/reset`, { method: "POST" })).arrayBuffer();
});

/** A tenant whose alias "chat" tries the rogue backend first, then sim "a" (pinned order). */
function rogueFirst(behaviour: RogueBehaviour, overrides: Partial<TenantConfigInput> = {}, query = ""): TestConfig {
  const base = simConfig(["a"], overrides);
  return {
    ...base,
    backends: [{ id: "rogue", region: "us-east", url: `${rogueBase}/${behaviour}/v1${query}`, model: "rogue" }, ...base.backends],
    models: { chat: { route: ["rogue", "a"], order: "pinned" } },
  };
}

/** The same, with the rogue backend alone in the route. */
function rogueOnly(behaviour: RogueBehaviour, overrides: Partial<TenantConfigInput> = {}): TestConfig {
  return { ...rogueFirst(behaviour, overrides), models: { chat: { route: ["rogue"] } } };
}

const putTenant = (name: string, body: string, contentType = "application/json") =>
  SELF.fetch(`https://sluice.test/admin/tenants/${name}`, { method: "PUT", headers: { ...ADMIN, "content-type": contentType }, body });

const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

describe("names from requests and configs never reach the prototype chain", () => {
  it("answers 404 model_not_found for Object.prototype names, and serves an alias that really has one", async () => {
    const { key } = await createTenant({ ...simConfig(["a"]), models: { chat: { route: ["a"] }, constructor: { route: ["a"] } } });
    for (const model of ["toString", "hasOwnProperty", "__proto__", "valueOf", "isPrototypeOf", "__defineGetter__"])
      await expectError(await chat(key, { model, messages: MESSAGES }), 404, "model_not_found");
    const own = await chat(key, { model: "constructor", messages: MESSAGES });
    expect(own.status).toBe(200);
    expect(((await own.json()) as any).choices[0].message.content).toBe(expectedText());
  });

  it("refuses configs whose fallbacks or token budget name a prototype property", async () => {
    const withFallback = { ...simConfig(["a"]), models: { chat: { route: ["a"], fallbacks: ["toString"] } } };
    await expectError(
      await putTenant("proto-fallback", JSON.stringify(withFallback)),
      400,
      "invalid_request",
      /unknown model alias "toString"/,
    );
    const withBudget = { ...simConfig(["a"]), models: { chat: { route: ["a"], tokenBudget: { maxTokens: 10, to: "constructor" } } } };
    await expectError(
      await putTenant("proto-budget", JSON.stringify(withBudget)),
      400,
      "invalid_request",
      /unknown model alias "constructor"/,
    );
  });
});

describe("nesting depth", () => {
  it("answers 400 json_too_deep, naming the limit, where hashing the body used to overflow the stack", async () => {
    const { key } = await createTenant(simConfig(["a"], { dedup: { semantic: true } }));
    const deep = `{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":0,"extra":${nested(5_000)}}`;
    const send = (headers: Record<string, string>) =>
      SELF.fetch("https://sluice.test/v1/chat/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
        body: deep,
      });
    await expectError(await send({ "idempotency-key": "k-deep" }), 400, "json_too_deep", /64 deep/);
    await expectError(await send({}), 400, "json_too_deep");
    await expectError(await putTenant("deep-config", `{"backends":${nested(5_000)}}`), 400, "json_too_deep");
    expect((await simStats("a")).requests).toBe(0);
  });
});

describe("a backend's SSE without end", () => {
  for (const behaviour of ["endless-line", "endless-json"] as const) {
    it(`fails the attempt past 1 MiB without an event (${behaviour}), cancels it, and the next backend answers`, async () => {
      const { tenant, key } = await createTenant(rogueFirst(behaviour));
      const sse = await readSse(await chat(key, { model: "chat", messages: MESSAGES, stream: true }));
      expect(sse.text).toBe(expectedText());
      expect(sse.done).toBe(true);
      await eventually(async () => (await rogueStats()).open === 0);
      const stats = await rogueStats();
      expect(stats.requests[behaviour]).toBe(1);
      // It was stopped near the cap, not read on to memory exhaustion.
      expect(stats.bytesSent).toBeLessThan(64 * 1024 * 1024);
      expect((await gateStats(tenant)).backends.find((b: any) => b.id === "rogue")).toMatchObject({ failures: 1 });
      // Alone, with a first-token timeout far away: the cap is what ends the attempt.
      const only = await createTenant(rogueOnly(behaviour, { timeouts: { firstTokenMs: 120_000 }, retry: { maxAttempts: 1 } }));
      const res = await chat(only.key, { model: "chat", messages: MESSAGES });
      expect(res.status).toBe(502);
      expect(await res.text()).toContain("upstream_event_too_large");
    });
  }
});

describe("a backend's 401 or 403", () => {
  it("is the backend's problem: fail over, count it against the backend, show it as an auth failure", async () => {
    const { tenant, key } = await createTenant(rogueFirst("auth-401"));
    for (let i = 0; i < 3; i++) {
      const res = await chat(key, { model: "chat", messages: MESSAGES });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).choices[0].message.content).toBe(expectedText());
    }
    const rogue = (await gateStats(tenant)).backends.find((b: any) => b.id === "rogue");
    expect(rogue).toMatchObject({ failures: 3, authFailures: 3, successes: 0 });
  });

  it("reaches a tenant admin's dead letters without the operator's key or hosts; the operator reads it whole", async () => {
    const secret = "0123456789abcdef-upstream";
    const config = rogueOnly("auth-echo", { retry: { maxAttempts: 1 } });
    const { tenant, key } = await createTenant({ ...config, backends: config.backends.map((b) => ({ ...b, apiKey: secret })) });
    expect((await chat(key, { model: "chat", messages: MESSAGES })).status).toBe(502);
    const issued = await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/admin-keys`, { method: "POST", headers: ADMIN });
    const own = ((await issued.json()) as { key: string }).key;
    const letters = async (auth: Record<string, string>) => {
      let text = "";
      await eventually(async () => {
        text = await (await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/dead-letters`, { headers: auth })).text();
        return text.includes("upstream_auth_failed");
      });
      return text;
    };
    const operator = await letters(ADMIN);
    expect(operator).toContain(secret);
    expect(operator).toContain("10.9.8.7");
    const tenantView = await letters({ authorization: `Bearer ${own}` });
    for (const hidden of [secret, "10.9.8.7", "127.0.0.1", rogueBase]) expect(tenantView).not.toContain(hidden);
    expect(tenantView).toContain("Incorrect API key provided");
  });

  it("never reaches the client as its own 401/403, nor with the backend's text", async () => {
    for (const behaviour of ["auth-401", "auth-403"] as const) {
      const { key } = await createTenant(rogueOnly(behaviour));
      const res = await chat(key, { model: "chat", messages: MESSAGES });
      expect(res.status).toBe(502);
      const body = await res.text();
      expect(body).toContain("upstream_auth_failed");
      expect(body).not.toContain("sk-revoked-upstream-secret");
    }
  });
});

describe("foreign error text", () => {
  it("a backend's own failure text stays in the dead letter; the client gets sluice's words", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"], { retry: { maxAttempts: 1 } }));
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { status: 500 } });
    expect(res.status).toBe(502);
    const body: any = await res.json();
    expect(body.error.message).toMatch(/upstream_http_500: a answered 500\./);
    expect(body.error.message).not.toContain("injected");
    // The dead letter is written after the answer (waitUntil).
    const deadLetters = async (): Promise<any[]> =>
      ((await (await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/dead-letters`, { headers: ADMIN })).json()) as any).data;
    await eventually(async () => (await deadLetters()).length === 1);
    const dead = { data: await deadLetters() };
    expect(dead.data[0].attempts[0]).toMatchObject({ errorCode: "upstream_http_500", errorDetail: "sim a: injected 500" });
  });
});

describe("redirects from backends", () => {
  it("are never followed: the attempt fails and the next backend answers", async () => {
    const cfg = rogueFirst("redirect", {}, `?to=${encodeURIComponent(`${simUrl("b")}/chat/completions`)}`);
    const { tenant, key } = await createTenant(cfg);
    const res = await chat(key, { model: "chat", messages: MESSAGES });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-backend")).toBe("a");
    await res.arrayBuffer();
    expect((await simStats("b")).requests).toBe(0);
    expect((await gateStats(tenant)).backends.find((b: any) => b.id === "rogue")).toMatchObject({ failures: 1 });
  });
});

describe("max_tokens on the relay", () => {
  it("ends the stream with finish_reason length and cancels a backend that ignores it", async () => {
    const { key } = await createTenant(rogueOnly("ignores-max-tokens"));
    const sse = await readSse(await chat(key, { model: "chat", messages: MESSAGES, stream: true, max_tokens: 5 }));
    expect(sse.done).toBe(true);
    expect(sse.finishReason).toBe("length");
    expect(sse.contentChunks).toBeGreaterThanOrEqual(5);
    expect(sse.contentChunks).toBeLessThan(5 + 16 + 64);
    await eventually(async () => (await rogueStats()).open === 0);
    const json: any = await (await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 5 })).json();
    expect(json.choices[0].finish_reason).toBe("length");
  });
});

describe("an answer with no output", () => {
  it("is a failed attempt when [DONE] comes first: the next backend answers", async () => {
    const { key } = await createTenant(rogueFirst("done-first"));
    const sse = await readSse(await chat(key, { model: "chat", messages: MESSAGES, stream: true }));
    expect(sse.text).toBe(expectedText());
    const only = await createTenant(rogueOnly("done-first"));
    const res = await chat(only.key, { model: "chat", messages: MESSAGES });
    expect(res.status).toBe(502);
    expect(await res.text()).toContain("upstream_empty_answer");
  });
});

describe("content types", () => {
  it("accepts JSON media types only, parameters allowed", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const post = (type: string) =>
      SELF.fetch("https://sluice.test/v1/chat/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": type },
        body: JSON.stringify({ model: "chat", messages: MESSAGES }),
      });
    for (const type of ["application/json-seq", "application/json, text/plain", "text/json", "application/jsonx"])
      await expectError(await post(type), 415, "unsupported_media_type");
    for (const type of ["application/json; charset=utf-8", "Application/JSON", "application/vnd.sluice+json"]) {
      const res = await post(type);
      expect(res.status, type).toBe(200);
      await res.arrayBuffer();
    }
  });
});

describe("request bodies", () => {
  it("answers 408 when the body does not arrive within limits.bodyReadTimeoutMs", async () => {
    const { key } = await createTenant(simConfig(["a"], { limits: { bodyReadTimeoutMs: 200 } }));
    let sent = false;
    const never = new ReadableStream<Uint8Array>({
      pull(controller) {
        // The start of a body, then nothing, ever.
        if (!sent) controller.enqueue(new TextEncoder().encode('{"model":"chat",'));
        sent = true;
        return new Promise(() => {});
      },
    });
    const res = await SELF.fetch("https://sluice.test/v1/chat/completions", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: never,
    });
    await expectError(res, 408, "request_timeout", /200 ms/);
  });

  it("bounds admin bodies and the counts inside a config, naming the limit", async () => {
    const big = JSON.stringify({ ...simConfig(["a"]), junk: "x".repeat(300 * 1024) });
    await expectError(await putTenant("too-big", big), 413, "body_too_large", /262144 bytes/);
    const aliases = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`m${i}`, { route: ["a"] }]));
    await expectError(
      await putTenant("many-aliases", JSON.stringify({ ...simConfig(["a"]), models: aliases })),
      400,
      "invalid_request",
      /at most 256 model aliases/,
    );
    const chain = Object.fromEntries(
      Array.from({ length: 10 }, (_, i) => [`m${i}`, { route: ["a"], fallbacks: i < 9 ? [`m${i + 1}`] : [] }]),
    );
    await expectError(
      await putTenant("deep-fallbacks", JSON.stringify({ ...simConfig(["a"]), models: chain })),
      400,
      "invalid_request",
      /more than 8 hops/,
    );
  });

  it("refuses backend URLs at the metadata service, with credentials or at the router, and keys with CR/LF", async () => {
    const withUrl = (url: string) => JSON.stringify({ ...simConfig(["a"]), backends: [{ id: "a", region: "us-east", url, model: "m" }] });
    await expectError(await putTenant("meta", withUrl("http://169.254.169.254/latest")), 400, "invalid_backend_url", /link-local/);
    await expectError(await putTenant("creds", withUrl("https://u:p@gpu.example.net/v1")), 400, "invalid_backend_url", /credentials/);
    // The router is where its PUBLIC_URL (wrangler.toml) says it is.
    await expectError(await putTenant("self", withUrl("http://LOCALHOST.:8787/v1")), 400, "invalid_backend_url", /router itself/);
    const crlf = {
      ...simConfig(["a"]),
      backends: [{ id: "a", region: "us-east", url: simUrl("a"), model: "m", apiKey: "sk-1\r\nx-evil: 1" }],
    };
    await expectError(await putTenant("crlf", JSON.stringify(crlf)), 400, "invalid_request", /visible ASCII/);
  });
});
