// The HTTP surface: validation, auth and tenant isolation, models, admin API.
import { SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { ADMIN, chat, createTenant, eventually, expectError, MESSAGES, resetSims, simConfig } from "./helpers";

beforeEach(resetSims);

const JSON_HEADERS = { "content-type": "application/json" };
const post = (key: string, body: string, headers: Record<string, string> = JSON_HEADERS) =>
  SELF.fetch("https://sluice.test/v1/chat/completions", { method: "POST", headers: { authorization: `Bearer ${key}`, ...headers }, body });

describe("request validation", () => {
  it.each([
    ["not JSON", "{nope", /JSON/i],
    ["an array", "[]", /expected object/],
    ["no model", JSON.stringify({ messages: MESSAGES }), /model/],
    ["empty messages", JSON.stringify({ model: "chat", messages: [] }), /messages: messages must hold at least one message/],
    ["messages not an array", JSON.stringify({ model: "chat", messages: "hi" }), /messages/],
    ["an unknown role", JSON.stringify({ model: "chat", messages: [{ role: "robot", content: "x" }] }), /messages\.0\.role/],
    ["temperature out of range", JSON.stringify({ model: "chat", messages: MESSAGES, temperature: 7 }), /temperature/],
    ["stream not a boolean", JSON.stringify({ model: "chat", messages: MESSAGES, stream: "yes" }), /stream/],
    ["max_tokens negative", JSON.stringify({ model: "chat", messages: MESSAGES, max_tokens: -1 }), /max_tokens/],
    ["n > 1", JSON.stringify({ model: "chat", messages: MESSAGES, n: 3 }), /only n = 1/],
  ])("answers 400 for %s, saying what is wrong", async (_name, body, message) => {
    const { key } = await createTenant(simConfig(["a"]));
    await expectError(await post(key, body), 400, /invalid_request/, message);
  });

  it("answers 413 for a body over the tenant's limit", async () => {
    const { key } = await createTenant(simConfig(["a"], { limits: { maxBodyBytes: 1024 } }));
    const big = JSON.stringify({ model: "chat", messages: [{ role: "user", content: "x".repeat(5000) }] });
    await expectError(await post(key, big), 413, "body_too_large", /1024 bytes/);
  });

  it("answers 415 for a body not sent as JSON", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    await expectError(
      await post(key, "model=chat", { "content-type": "application/x-www-form-urlencoded" }),
      415,
      "unsupported_media_type",
      /Content-Type: application\/json/,
    );
  });

  it("answers 400 for an unknown X-Priority", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    await expectError(
      await chat(key, { model: "chat", messages: MESSAGES }, { "x-priority": "urgent" }),
      400,
      "invalid_priority",
      /high, normal, low/,
    );
  });

  it("answers 404 for an unknown model alias", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    await expectError(await chat(key, { model: "gpt-9", messages: MESSAGES }), 404, "model_not_found", /gpt-9/);
  });

  it("passes unknown fields through to the backend", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    // sim_fault is unknown to sluice: the sim acting on it proves it arrived.
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { status: 400 } });
    await expectError(res, 400, "upstream_http_400");
  });

  it("never answers 5xx to garbage", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const bodies = [
      "",
      "null",
      "0",
      '"x"',
      "{}",
      '{"model":1}',
      '{"model":"chat","messages":[null]}',
      '{"model":"chat","messages":[{"role":"user","content":5}]}',
      "\u0000\u0001",
    ];
    for (const body of bodies) {
      const res = await post(key, body);
      expect(res.status, body).toBeGreaterThanOrEqual(400);
      expect(res.status, body).toBeLessThan(500);
      await res.arrayBuffer();
    }
  });
});

describe("authentication and tenant isolation", () => {
  it("answers 401 without a key and with a wrong key", async () => {
    const none = await SELF.fetch("https://sluice.test/v1/chat/completions", { method: "POST", headers: JSON_HEADERS, body: "{}" });
    await expectError(none, 401, "missing_api_key");
    await expectError(await chat("sk-not-a-real-key-000000", { model: "chat", messages: MESSAGES }), 401, "invalid_api_key");
  });

  it("scopes a key to its own tenant's models", async () => {
    const one = await createTenant({ ...simConfig(["a"]), models: { alpha: { route: ["a"] } } });
    const two = await createTenant({ ...simConfig(["b"]), models: { beta: { route: ["b"] } } });
    const models = async (key: string) =>
      ((await (await SELF.fetch("https://sluice.test/v1/models", { headers: { authorization: `Bearer ${key}` } })).json()) as any).data.map(
        (m: any) => m.id,
      );
    expect(await models(one.key)).toEqual(["alpha"]);
    expect(await models(two.key)).toEqual(["beta"]);
    await expectError(await chat(one.key, { model: "beta", messages: MESSAGES }), 404, "model_not_found");
    expect((await chat(two.key, { model: "beta", messages: MESSAGES })).status).toBe(200);
    // A tenant key is no admin token.
    await expectError(
      await SELF.fetch(`https://sluice.test/admin/tenants/${two.tenant}`, { headers: { authorization: `Bearer ${one.key}` } }),
      401,
      "invalid_admin_token",
    );
  });

  it("revokes keys when the tenant is deleted", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const del = await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}`, { method: "DELETE", headers: ADMIN });
    expect(del.status).toBe(200);
    await expectError(await chat(key, { model: "chat", messages: MESSAGES }), 401, "invalid_api_key");
    await expectError(await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}`, { headers: ADMIN }), 404, "tenant_not_found");
  });

  it("lists a tenant's keys by id and revokes one: that key stops working, the others do not", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const keys = `https://sluice.test/admin/tenants/${tenant}/keys`;
    const json = { ...ADMIN, "content-type": "application/json" };
    const second = "sk-second-0123456789";
    const added = await SELF.fetch(keys, { method: "POST", headers: json, body: JSON.stringify({ key: second }) });
    expect(added.status).toBe(201);
    const secondId = ((await added.json()) as { id: string }).id;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
    const firstId = [...digest]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("")
      .slice(0, 16);
    expect(await (await SELF.fetch(keys, { headers: ADMIN })).json()).toEqual({
      object: "list",
      data: [
        { id: firstId, createdAt: expect.any(String) },
        { id: secondId, createdAt: expect.any(String) },
      ],
    });

    const revoked = await SELF.fetch(`${keys}/${firstId}`, { method: "DELETE", headers: ADMIN });
    expect(await revoked.json()).toEqual({ revoked: firstId });
    await expectError(await chat(key, { model: "chat", messages: MESSAGES }), 401, "invalid_api_key");
    expect((await chat(second, { model: "chat", messages: MESSAGES })).status).toBe(200);
    expect(await (await SELF.fetch(keys, { headers: ADMIN })).json()).toEqual({
      object: "list",
      data: [{ id: secondId, createdAt: expect.any(String) }],
    });

    await expectError(await SELF.fetch(`${keys}/${firstId}`, { method: "DELETE", headers: ADMIN }), 404, "key_not_found");
    await expectError(await SELF.fetch(`${keys}/not-an-id`, { method: "DELETE", headers: ADMIN }), 400, "invalid_key_id");
    await expectError(await SELF.fetch("https://sluice.test/admin/tenants/nobody-here/keys", { headers: ADMIN }), 404, "tenant_not_found");
    // Another tenant cannot revoke it.
    const other = await createTenant(simConfig(["a"]));
    await expectError(
      await SELF.fetch(`https://sluice.test/admin/tenants/${other.tenant}/keys/${secondId}`, { method: "DELETE", headers: ADMIN }),
      404,
      "key_not_found",
    );
    expect((await chat(second, { model: "chat", messages: MESSAGES })).status).toBe(200);
  });
});

describe("admin API", () => {
  const admin = (path: string, init: RequestInit = {}) =>
    SELF.fetch(`https://sluice.test/admin${path}`, { ...init, headers: { ...ADMIN, ...JSON_HEADERS, ...(init.headers ?? {}) } });

  it("needs the admin token", async () => {
    await expectError(await SELF.fetch("https://sluice.test/admin/tenants/x"), 401, "missing_admin_token");
    await expectError(
      await SELF.fetch("https://sluice.test/admin/tenants/x", { headers: { authorization: "Bearer wrong" } }),
      401,
      "invalid_admin_token",
    );
  });

  it("stores a config with defaults filled in, and reads it back", async () => {
    const put = await admin("/tenants/acme", { method: "PUT", body: JSON.stringify(simConfig(["a"])) });
    expect(put.status).toBe(200);
    const stored: any = await put.json();
    expect(stored.limits).toEqual({
      maxConcurrency: 64,
      maxQueue: 256,
      maxQueueWaitMs: 10_000,
      maxBodyBytes: 1_000_000,
      bodyReadTimeoutMs: 30_000,
      shedHintMs: 25,
      shards: 1,
    });
    expect(stored.retry).toMatchObject({ maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 5000, budgetRatio: 0.2 });
    expect(stored.breaker).toMatchObject({ failureRate: 0.5, minRequests: 5, windowMs: 30000, cooldownMs: 5000 });
    expect(stored.timeouts).toEqual({ connectMs: 3000, firstTokenMs: 15000, idleMs: 10000, totalMs: 600000, clientStallMs: 60000 });
    expect(await (await admin("/tenants/acme")).json()).toEqual(stored);
  });

  it("rejects invalid configs with the issues", async () => {
    const bad = { backends: [{ id: "x", region: "us-east", url: "ftp://nope", model: "m" }], models: { chat: { route: ["y"] } } };
    const res = await admin("/tenants/acme", { method: "PUT", body: JSON.stringify(bad) });
    await expectError(res, 400, "invalid_request", /backends\.0\.url: must be an http\(s\) URL$/);
    // Backend ids are checked against the fleet once the config has its shape.
    const unknown = { ...bad, backends: [{ ...bad.backends[0], url: "https://x.example/v1" }] };
    await expectError(
      await admin("/tenants/acme", { method: "PUT", body: JSON.stringify(unknown) }),
      400,
      "invalid_request",
      /^Invalid config: models\.chat\.route\.0: unknown backend "y"$/,
    );
    await expectError(await admin("/tenants/Bad Name!", { method: "PUT", body: "{}" }), 400, "invalid_tenant_id");
  });

  it("adds keys once, refuses another tenant's key, and 404s for unknown tenants", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const other = await createTenant(simConfig(["a"]));
    const taken = await admin(`/tenants/${other.tenant}/keys`, { method: "POST", body: JSON.stringify({ key }) });
    await expectError(taken, 409, "key_taken");
    await expectError(
      await admin(`/tenants/${tenant}/keys`, { method: "POST", body: JSON.stringify({ key: "short" }) }),
      400,
      "invalid_request",
      /at least 12/,
    );
    await expectError(
      await admin(`/tenants/nobody-here/keys`, { method: "POST", body: JSON.stringify({ key: "sk-0123456789abcdef" }) }),
      404,
      "tenant_not_found",
    );
  });

  it("reports stats and lists dead letters", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    await (await chat(key, { model: "chat", messages: MESSAGES })).arrayBuffer();
    // The settle reaches the gate just after the client has the answer.
    await eventually(async () => ((await (await admin(`/tenants/${tenant}/stats`)).json()) as any).counters.completed === 1);
    const stats: any = await (await admin(`/tenants/${tenant}/stats`)).json();
    expect(stats).toMatchObject({ tenant, inFlight: 0, queue: { depth: 0 }, counters: { completed: 1, attempts: 1 } });
    expect(stats.backends[0]).toMatchObject({ id: "a", breaker: "closed", inFlight: 0, attempts: 1, successes: 1 });
    const dl: any = await (await admin(`/tenants/${tenant}/dead-letters`)).json();
    expect(dl).toEqual({ object: "list", data: [], next_before: null });
    await expectError(await admin(`/tenants/${tenant}/dead-letters?limit=0`), 400, "invalid_limit");
  });

  it("exports the same stats in Prometheus' text format", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    await (await chat(key, { model: "chat", messages: MESSAGES })).arrayBuffer();
    const res = await admin(`/tenants/${tenant}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const lines = (await res.text()).split("\n");
    expect(lines).toContain(`sluice_completed_total{tenant="${tenant}"} 1`);
    expect(lines).toContain(`sluice_backend_attempts_total{tenant="${tenant}",backend="a",region="us-east"} 1`);
    expect(lines).toContain(`sluice_backend_breaker_state{tenant="${tenant}",backend="a",region="us-east",state="closed"} 1`);
    await expectError(await admin("/tenants/nobody-here/metrics"), 404, "tenant_not_found");
    await expectError(await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/metrics`), 401, "missing_admin_token");
  });
});

describe("methods", () => {
  it("answers 405 with Allow for a known path asked with another method, 404 for an unknown path", async () => {
    const wrong = await SELF.fetch("https://sluice.test/v1/chat/completions");
    expect(wrong.headers.get("allow")).toBe("POST");
    await expectError(wrong, 405, "method_not_allowed", /answers POST, not GET/);
    const models = await SELF.fetch("https://sluice.test/v1/models", { method: "DELETE" });
    expect(models.headers.get("allow")).toBe("GET, HEAD");
    await expectError(models, 405, "method_not_allowed");
    const tenant = await SELF.fetch("https://sluice.test/admin/tenants/acme", { method: "POST", headers: ADMIN });
    expect(tenant.headers.get("allow")).toBe("DELETE, GET, HEAD, PATCH, PUT");
    await expectError(tenant, 405, "method_not_allowed");
    await expectError(await SELF.fetch("https://sluice.test/v1/nothing"), 404, "not_found");
  });
});
