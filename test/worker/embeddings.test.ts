// POST /v1/embeddings against real sims: vectors as floats or base64 with dimensions passed through,
// only backends that serve embeddings asked, a fallback after a failure, every breaker open, rate
// limits counting the inputs' tokens, and each bound a 400 naming its limit.
import { SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { MAX_EMBEDDING_INPUTS } from "../../src/config/embeddings-request";
import { embeddingOf } from "../../sim/embeddings";
import { createTenant, expectError, resetSims, simConfig, simControl, simStats } from "./helpers";

beforeEach(resetSims);

function embed(key: string, body: Record<string, unknown>): Promise<Response> {
  return SELF.fetch("https://sluice.test/v1/embeddings", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "chat", input: "a queue", ...body }),
  });
}

/** Float32 little-endian base64, as the openai SDK decodes it. */
const decode = (b64: string) => Array.from(new Float32Array(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer));

describe("POST /v1/embeddings", () => {
  it("answers the backend's vectors, as floats or base64, for one input or many, dimensions passed on", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const one: any = await (await embed(key, {})).json();
    expect(one).toMatchObject({ object: "list", data: [{ object: "embedding", index: 0 }] });
    expect(one.data[0].embedding).toEqual(embeddingOf("sim-model", "a queue"));
    expect(one.usage.prompt_tokens).toBeGreaterThan(0);
    const many: any = await (await embed(key, { input: ["a", "b"], encoding_format: "base64", dimensions: 4 })).json();
    expect(many.data.map((d: any) => decode(d.embedding))).toEqual([embeddingOf("sim-model", "a", 4), embeddingOf("sim-model", "b", 4)]);
    const tokens: any = await (await embed(key, { input: [[1, 2, 3]] })).json();
    expect(tokens.data[0].embedding).toEqual(embeddingOf("sim-model", [1, 2, 3]));
  });

  it("asks only backends that serve embeddings, and falls back to another after a failure", async () => {
    const config = simConfig(["a", "b", "c"]);
    const backends = config.backends.map((b) => ({ ...b, serves: b.id === "a" ? ["chat" as const] : undefined }));
    const { key } = await createTenant({ ...config, backends, models: { chat: { route: ["a", "b", "c"], order: "pinned" } } });
    const res = await embed(key, { sim_fault: { backend: "b", status: 503 } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-backend")).toBe("c");
    expect(res.headers.get("x-sluice-attempts")).toBe("2");
    expect((await simStats("a")).requests).toBe(0);
    const chatOnly = await createTenant({ ...config, backends: config.backends.map((b) => ({ ...b, serves: ["chat" as const] })) });
    await expectError(await embed(chatOnly.key, {}), 400, "model_not_served", /serves embeddings/);
  });

  it("answers 503 with Retry-After once every breaker is open, and 429 when the tenant's token rate is spent", async () => {
    const { key } = await createTenant(
      simConfig(["a"], { retry: { maxAttempts: 1 }, breaker: { consecutiveFailures: 1, cooldownMs: 60_000 } }),
    );
    await simControl("a", { failRate: 1, failStatus: 503 });
    await expectError(await embed(key, {}), 502, "max_attempts");
    const open = await embed(key, {});
    expect(Number(open.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await expectError(open, 503, "no_backend_available");
    const limited = await createTenant(simConfig(["a"], { limits: { tokensPerMinute: 10 } }));
    await simControl("a", { failRate: 0 });
    // The first fits a full bucket whatever its size; the next waits for its 100 estimated tokens.
    expect((await embed(limited.key, { input: "x".repeat(400) })).status).toBe(200);
    await expectError(await embed(limited.key, { input: "x".repeat(400) }), 429, "rate_limited");
  });

  it("refuses what is over a limit with a 400 naming it, and a backend's own 400 is passed on", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    await expectError(
      await embed(key, { input: Array.from({ length: MAX_EMBEDDING_INPUTS + 1 }, () => "x") }),
      400,
      "invalid_request",
      /input: input holds at most 2048 inputs/,
    );
    await expectError(await embed(key, { input: "" }), 400, "invalid_request", /must not be empty/);
    await expectError(await embed(key, { input: ["ok", ""] }), 400, "invalid_request", /input\.1: an input must not be empty/);
    await expectError(await embed(key, { input: 42 }), 400, "invalid_request", /input must be a string/);
    await expectError(await embed(key, { encoding_format: "bits" }), 400, "invalid_request", /encoding_format/);
    await expectError(await embed(key, { sim_fault: { status: 400 } }), 400, "upstream_http_400");
  });
});
