// The examples of README and of the docs pages it links, run as written against a router on workerd
// with the demo tenant of `npm run dev` (scripts/demo-tenant.ts), so the docs cannot drift: their
// addresses are rewritten to this stack's ports and curl's progress meter is silenced, nothing
// else. Shell blocks run with bash and curl, TypeScript blocks with tsx, the tenant config is PUT
// through the admin API.
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printWorkerLog, startRouter, type RunningRouter } from "../../scripts/router-on-miniflare";
import { parseRequestLine } from "../../scripts/request-line";
import type { RequestLine } from "../../src/observe/request-log";
import { eventually } from "../support/eventually";
import { ADMIN_TOKEN, DEMO_KEY, demoTenantConfig } from "../../scripts/demo-tenant";
import { createTenantWithKey } from "../../scripts/tenant-admin";
import { SimServer } from "../../sim/server";
import { expectedText } from "../../sim/text";
import { webhookPayload } from "../../src/observe/alerts/payload";
import type { WebhookMessage } from "../../src/observe/alerts/webhook-message";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** README and every docs page with examples (the others hold results and notes, no code). */
const DOCS = [
  "README.md",
  ...readdirSync(path.join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const blocks = DOCS.flatMap((file) =>
  [...readFileSync(path.join(ROOT, file), "utf8").matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ file, lang: m[1]!, code: m[2]! })),
);

/** Blocks that are not run here, and why: the assertion below fails when another one appears. */
const NOT_RUN: Array<{ marker: string; why: string }> = [
  { marker: "npm install && npm run dev", why: "the Quick start itself: CI runs `npm ci` and `npm test`" },
  { marker: "npx wrangler deploy", why: "needs a Cloudflare account" },
];

/** Runs a command without blocking this process, whose event loop serves the sims. */
const run = async (cmd: string, args: string[]) => (await promisify(execFile)(cmd, args, { encoding: "utf8", timeout: 60_000 })).stdout;

const hasCurl = spawnSync("curl", ["--version"]).status === 0;
if (!hasCurl) console.warn("\n[readme.test] curl is not installed: README's shell examples are NOT run (apt-get install curl)\n");

let router: RunningRouter;
const sims: SimServer[] = [];
let rewrite: (code: string) => string;
/** The router's request log lines. */
const logged: RequestLine[] = [];

beforeAll(async () => {
  for (const id of ["use1-a", "euw1-a"]) {
    const sim = new SimServer({ id, port: 0, tokensPerSecond: 1000, firstTokenMs: 2 });
    await sim.listen();
    sims.push(sim);
  }
  router = await startRouter({
    adminToken: ADMIN_TOKEN,
    onLog: (level, message) => {
      const line = parseRequestLine(message);
      if (line) logged.push(line);
      else printWorkerLog(level, message);
    },
  });
  const simUrl = (i: number) => `http://127.0.0.1:${sims[i]!.port}`;
  const config = demoTenantConfig(
    sims.map((s, i) => ({ id: s.options.id, region: i === 0 ? "us-east" : "eu-west", url: `${simUrl(i)}/v1` })),
  );
  await createTenantWithKey({ fetch, baseUrl: router.url, adminToken: ADMIN_TOKEN, name: "demo", config, key: DEMO_KEY });
  rewrite = (code) =>
    code
      .replaceAll("http://127.0.0.1:8787", router.url)
      .replaceAll("http://127.0.0.1:9101", simUrl(0))
      .replaceAll("http://127.0.0.1:9102", simUrl(1));
});

afterAll(async () => {
  await router?.dispose();
  await Promise.all(sims.map((s) => s.close()));
});

const isNotRun = (code: string) => NOT_RUN.some((n) => code.includes(n.marker));

describe("README examples", () => {
  it("leaves out only the blocks it says why", () => {
    const skipped = blocks.filter((b) => b.lang === "sh" && isNotRun(b.code));
    expect(skipped).toHaveLength(NOT_RUN.length);
  });

  it.skipIf(!hasCurl)("shell: every curl example answers as README says", async () => {
    const shell = blocks.filter((b) => b.lang === "sh" && !isNotRun(b.code));
    expect(shell.length).toBeGreaterThanOrEqual(2);
    const outputs: string[] = [];
    for (const b of shell) outputs.push(await run("bash", ["-euo", "pipefail", "-c", rewrite(b.code).replaceAll("curl ", "curl -sS ")]));
    // The fallback recipe: llama-sim fails in both regions, chat-small's own backend answers.
    expect(outputs.find((o) => /^x-sluice-backend:/im.test(o))).toMatch(/^x-sluice-backend: use1-small\r?$/im);
    // A named session's turns all go to one backend.
    const session = outputs.find((o) => o.includes("session trip-42"));
    const homes = [...session!.matchAll(/^session trip-42 turn \d: x-sluice-backend: (\S+)\r?$/gim)].map((m) => m[1]);
    expect(homes).toHaveLength(3);
    expect(new Set(homes).size).toBe(1);
    // Spend and budgets: four requests fit the key's 300 tokens, the fifth is refused; the spend names the key.
    const budget = outputs.find((o) => o.includes("key issued: 201"));
    expect(budget).toMatch(/request 1: 200\nrequest 2: 200\nrequest 3: 200\nrequest 4: 200\nrequest 5: 429\n/);
    const ledger = JSON.parse(budget!.split("\n").at(-1) || budget!.split("\n").at(-2)!);
    expect(ledger.data).toContainEqual(expect.objectContaining({ key_name: "ci-bot", model: "chat", attempts: 4 }));
    expect(ledger.total.usd).toBeGreaterThan(0);
    // The same Idempotency-Key twice: the second is answered from the first.
    expect(outputs.find((o) => o.includes("(generated)"))).toMatch(/\(generated\)\nx-sluice-replay: (stored|joined)/i);
    const chat = outputs.find((o) => o.includes("chat.completion.chunk"));
    expect(chat).toBeDefined();
    expect(chat!.trimEnd().endsWith("data: [DONE]")).toBe(true);
    const admin = outputs.find((o) => o.includes('"tenant":"acme"'));
    expect(admin).toContain('"key":"sk-acme-0123456789"');
    // The tenant admin's change and rollback, as its history tells them.
    const history = outputs.find((o) => o.includes('"kind":"rollback"'));
    expect(history).toMatch(/"version":3,"created_at":\d+,"actor":"admin-key:[0-9a-f]{16}","kind":"rollback","rollback_of":1/);
    expect(history).toContain('"kind":"patch"');
    const demo: any = await (
      await fetch(`${router.url}/admin/tenants/demo`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json();
    expect(demo.models.chat.fallbacks).toEqual(["chat-small", "chat-large"]);
    // The shared pool example: the pool's stats name its 16 slots, and a tenant with no backends of its own was served by them.
    const pool = outputs.find((o) => o.includes('"stats":{"pool":"use1"'));
    expect(pool).toMatch(/"capacity":16/);
    expect(pool).toMatch(/"object":"chat\.completion"/);
    expect(pool).toContain('"tenant":"team-b","weight":3');
    // The async example answered 202 with a generation.
    expect(outputs.find((o) => o.includes('"object":"generation"'))).toContain('"status":"queued"');
    // The workflow example: its run followed to its end, every step succeeded.
    const followed = outputs.find((o) => o.includes("event: run.running"));
    expect(followed).toMatch(/event: run\.completed\n/);
    expect(followed!.match(/^event: step\.succeeded$/gm)).toHaveLength(3);
    const ran = JSON.parse(
      outputs
        .find((o) => o.includes('"object":"workflow.run"'))!
        .trim()
        .split("\n")
        .at(-1)!,
    );
    expect(ran).toMatchObject({ status: "completed", workflow: "research" });
    expect(ran.steps.find((s: { id: string }) => s.id === "retrieve").items).toEqual({ total: 3, succeeded: 3 });
  });

  it("json: the tenant config example is accepted as written", async () => {
    const json = blocks.filter(
      (b) => b.lang === "json" && !b.code.includes('"msg":"request"') && !b.code.includes('"alert') && !b.code.includes('"generation.'),
    );
    expect(json).toHaveLength(1);
    const res = await fetch(`${router.url}/admin/tenants/readme-config`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: rewrite(json[0]!.code),
    });
    expect(res.status, await res.clone().text()).toBe(200);
  });

  it("json: the alerts example is accepted in a tenant config, and the alert message has the fields sluice sends", async () => {
    const [config, message, ...others] = blocks.filter((b) => b.lang === "json" && b.code.includes('"alert'));
    expect(others).toHaveLength(0);
    const demo = await (await fetch(`${router.url}/admin/tenants/demo`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    const res = await fetch(`${router.url}/admin/tenants/readme-alerts`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ ...(demo as object), ...(JSON.parse(`{${config!.code}}`) as object) }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expectSameFields(message!.code, {
      webhook: { id: "ops", url: "https://hooks.example.com/sluice" },
      event: {
        id: "x",
        type: "alert.firing",
        tenant: "acme",
        shard: 0,
        rule: "gpu-down",
        kind: "breaker_open",
        backend: "use1-a",
        state: "firing",
        since: "",
        at: "",
        figures: {},
        summary: "",
      },
    });
  });

  it("json: the generation webhook message has the fields sluice sends", () => {
    const [message, ...others] = blocks.filter((b) => b.lang === "json" && b.code.includes('"generation.'));
    expect(others).toHaveLength(0);
    expectSameFields(message!.code, {
      webhook: { id: "ops", url: "https://hooks.example.com/sluice" },
      event: { id: "gen_1", type: "generation.completed", tenant: "acme", statusCode: 200, at: "" },
    });
  });

  it("json: the request log example has the fields of a real request's line", async () => {
    const [example, ...others] = blocks.filter((b) => b.lang === "json" && b.code.includes('"msg":"request"'));
    expect(others).toHaveLength(0);
    const documented = JSON.parse(example!.code) as RequestLine;
    const res = await fetch(`${router.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEMO_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: "Hello" }] }),
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const id = res.headers.get("x-request-id");
    await eventually(() => logged.some((l) => l.requestId === id));
    const line = logged.find((l) => l.requestId === id)!;
    expect(Object.keys(line).sort()).toEqual(Object.keys(documented).sort());
    expect(Object.keys(line.attempts[0]!).sort()).toEqual(Object.keys(documented.attempts[0]!).sort());
    expect(line).toMatchObject({ tenant: "demo", model: "chat", outcome: "complete", status: 200 });
  });

  it("ts: the openai SDK examples run and print the answer", async () => {
    const ts = blocks.filter((b) => b.lang === "ts");
    expect(ts.length).toBeGreaterThanOrEqual(2);
    // Beside node_modules, so that `import OpenAI from "openai"` resolves as in a user's project.
    const dir = path.join(ROOT, "node_modules", ".cache", "readme-examples");
    mkdirSync(dir, { recursive: true });
    for (const [i, block] of ts.entries()) {
      const file = path.join(dir, `example-${i}.mts`);
      writeFileSync(file, rewrite(block.code));
      const out = await run(process.execPath, [path.join(ROOT, "node_modules/tsx/dist/cli.mjs"), file]);
      // A single question (`content: "..."`), or a batch of them (`const questions = [...]`), one answer a line.
      const listed = block.code.match(/const questions = (\[[^\]]*\]);/);
      const asked = listed ? (JSON.parse(listed[1]!) as string[]) : [...block.code.matchAll(/content: "([^"]+)"/g)].map((m) => m[1]!);
      if (!listed) expect(asked).toHaveLength(1);
      // An Anthropic example names max_tokens (the API requires it): the sim then runs to exactly that many.
      const maxTokens = Number(block.code.match(/max_tokens: (\d+)/)?.[1] ?? Number.NaN);
      const answers = asked.map((q) =>
        expectedText({
          model: "llama-sim",
          messages: [{ role: "user", content: q }],
          maxTokens: Number.isNaN(maxTokens) ? undefined : maxTokens,
        }).trim(),
      );
      expect(out.trim()).toBe(answers.join("\n"));
    }
  });
});

/** The documented webhook body has the fields, and the fields of `data`, that sluice sends for `message`. */
function expectSameFields(documentedJson: string, message: WebhookMessage): void {
  const documented = JSON.parse(documentedJson) as { type: string; timestamp: string; data: Record<string, unknown> };
  const sent = JSON.parse(webhookPayload(message, "https://sluice.example.com")) as typeof documented;
  expect(Object.keys(sent).sort()).toEqual(Object.keys(documented).sort());
  expect(Object.keys(sent.data).sort()).toEqual(Object.keys(documented.data).sort());
}
