// Fuzzing the chat and admin APIs with fast-check (fixed seed, bounded runs): whatever a client or
// an admin sends, the answer is a success or a 4xx in OpenAI's error shape, never a 5xx, and never
// text from inside sluice (a runtime error, a stack).
import { SELF } from "cloudflare:test";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, createTenant, resetSims, simConfig, simUrl } from "./helpers";

const SEED = 20261201;
/** Runs are bounded; this only catches a hang (a loaded 2-core machine is slow, never wrong). */
const FUZZ_TIMEOUT_MS = 600_000;

const PROTOTYPE_NAMES = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf", "prototype", "__defineGetter__"];
const name = fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES, "chat", "m0"), fc.string({ maxLength: 20 }));
const deepArray = fc.integer({ min: 1, max: 300 }).map((d) => JSON.parse(`${"[".repeat(d)}${"]".repeat(d)}`));
const anyJson = fc.oneof(fc.jsonValue({ maxDepth: 4 }), deepArray);
const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/json-seq",
  "application/json, text/plain",
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/vnd.x+json",
  "",
];
/** Header values a client can send: visible ASCII and spaces. */
const headerValue = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 });

/** Fails unless `res` is a success, or a 4xx in OpenAI's error shape with no internal text in it. */
async function expectClientOutcome(res: Response, what: string): Promise<void> {
  const text = await res.text();
  expect(res.status, `${what}: ${text.slice(0, 300)}`).toBeLessThan(500);
  if (res.status < 400) return;
  const body = JSON.parse(text);
  expect(typeof body.error.message, what).toBe("string");
  expect(typeof body.error.code, what).toBe("string");
  expect(typeof body.error.type, what).toBe("string");
  expect(body.error.message, what).not.toMatch(/TypeError|RangeError|SyntaxError|ReferenceError|\n\s+at /);
}

describe("fuzzed chat requests", () => {
  let key = "";
  beforeAll(async () => {
    await resetSims();
    ({ key } = await createTenant(simConfig(["a"], { dedup: { semantic: true }, limits: { maxBodyBytes: 64 * 1024 } })));
  });

  it(
    "are answered with a success or a clear 4xx",
    async () => {
      const body = fc.record(
        {
          model: fc.oneof(name, anyJson),
          messages: fc.oneof(
            fc.constant([{ role: "user", content: "hi" }]),
            fc.array(fc.record({ role: fc.oneof(fc.constantFrom("user", "system", "tool"), name), content: anyJson }), { maxLength: 3 }),
            anyJson,
          ),
          temperature: fc.oneof(fc.constant(0), fc.double(), anyJson),
          max_tokens: fc.oneof(fc.integer({ min: -5, max: 40 }), anyJson),
          stream: fc.oneof(fc.boolean(), anyJson),
          extra: fc.oneof(anyJson, fc.string({ maxLength: 80_000 })),
        },
        { requiredKeys: [] },
      );
      await fc.assert(
        fc.asyncProperty(
          body,
          fc.constantFrom(...CONTENT_TYPES),
          fc.record({ "idempotency-key": headerValue, "x-priority": headerValue, "last-event-id": headerValue }, { requiredKeys: [] }),
          fc.boolean(),
          async (payload, contentType, headers, raw) => {
            const res = await SELF.fetch("https://sluice.test/v1/chat/completions", {
              method: "POST",
              headers: { authorization: `Bearer ${key}`, ...(contentType ? { "content-type": contentType } : {}), ...headers },
              // Sometimes not JSON at all: the payload's JSON cut short.
              body: raw ? JSON.stringify(payload).slice(0, -1) : JSON.stringify(payload),
            });
            await expectClientOutcome(res, JSON.stringify({ contentType, headers, raw }).slice(0, 300));
          },
        ),
        { seed: SEED, numRuns: 300 },
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

describe("fuzzed admin requests", () => {
  const backend = fc.record(
    {
      id: fc.oneof(name, anyJson),
      region: fc.oneof(fc.constant("us-east"), name),
      url: fc.oneof(
        fc.constant(simUrl("a")),
        fc.constantFrom("http://169.254.169.254/", "https://u:p@x.example/", "ftp://x", "https://sluice.test/v1", "not a url"),
        fc.webUrl(),
      ),
      model: fc.oneof(fc.constant("m"), anyJson),
      apiKey: fc.oneof(headerValue, fc.constant("k\r\nx: y"), anyJson),
      maxConcurrency: fc.oneof(fc.integer({ min: -2, max: 200_000 }), anyJson),
    },
    { requiredKeys: [] },
  );
  const route = fc.record(
    {
      route: fc.oneof(fc.array(name, { maxLength: 4 }), anyJson),
      fallbacks: fc.oneof(fc.array(name, { maxLength: 10 }), anyJson),
      order: fc.oneof(fc.constantFrom("nearest", "pinned"), anyJson),
      tokenBudget: fc.oneof(fc.record({ maxTokens: fc.integer({ min: -1, max: 100 }), to: name }), anyJson),
    },
    { requiredKeys: [] },
  );
  const config = fc.record(
    {
      backends: fc.oneof(fc.array(backend, { maxLength: 3 }), anyJson),
      models: fc.oneof(fc.dictionary(name, route, { maxKeys: 4 }), anyJson),
      limits: fc.oneof(fc.dictionary(fc.constantFrom("maxConcurrency", "shards", "maxQueue", "bodyReadTimeoutMs"), anyJson), anyJson),
    },
    { requiredKeys: [] },
  );
  const tenantId = fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES, "fuzz-tenant"), fc.string({ maxLength: 70 }));

  it(
    "are answered with a success or a clear 4xx",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          tenantId,
          fc.constantFrom("PUT", "GET", "DELETE", "POST"),
          config,
          fc.constantFrom(...CONTENT_TYPES),
          async (tenant, method, body, contentType) => {
            const path =
              method === "POST" ? `/admin/tenants/${encodeURIComponent(tenant)}/keys` : `/admin/tenants/${encodeURIComponent(tenant)}`;
            const res = await SELF.fetch(`https://sluice.test${path}`, {
              method,
              headers: { ...ADMIN, ...(contentType ? { "content-type": contentType } : {}) },
              body: method === "PUT" || method === "POST" ? JSON.stringify(method === "POST" ? { key: body } : body) : undefined,
            });
            await expectClientOutcome(res, `${method} ${path} ${contentType}`);
          },
        ),
        { seed: SEED, numRuns: 300 },
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});
