// Helpers for tests that drive the Worker through SELF.fetch, with real sims behind it.
import { SELF, abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { expect, onTestFinished, vi } from "vitest";
import type { RequestLine } from "../../src/observe/request-log";
import type { TenantConfigInput } from "../../src/config/schema";

/** A config with its own backends listed (tests read and change them). */
export type TestConfig = TenantConfigInput & { backends: NonNullable<TenantConfigInput["backends"]> };
import type { TenantGate } from "../../src/gate/tenant-gate";
import { expectedText as simExpectedText } from "../../sim/text";
import type { SimOptions, SimStats } from "../../sim/types";
import { createTenantWithKey } from "../../scripts/tenant-admin";

export { readSse } from "../support/sse-transcript";
import { eventually } from "../support/eventually";

export { eventually };

export const ADMIN = { authorization: `Bearer ${env.ADMIN_TOKEN}` };
export type SimName = keyof typeof env.SIM_PORTS;

export function simUrl(name: SimName): string {
  return `http://127.0.0.1:${env.SIM_PORTS[name]}/v1`;
}

export async function simStats(name: SimName): Promise<SimStats> {
  return (await fetch(`http://127.0.0.1:${env.SIM_PORTS[name]}/stats`)).json();
}

export async function simControl(name: SimName, patch: Partial<SimOptions>): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${env.SIM_PORTS[name]}/control`, { method: "POST", body: JSON.stringify(patch) });
  await res.arrayBuffer();
}

/** Puts every sim back to healthy defaults with zeroed counters. */
export async function resetSims(): Promise<void> {
  for (const name of Object.keys(env.SIM_PORTS) as SimName[]) {
    await simControl(name, {
      failRate: 0,
      disconnectRate: 0,
      hangRate: 0,
      slowStartRate: 0,
      tokensPerSecond: 500,
      firstTokenMs: 5,
      maxConcurrency: 256,
      ignoreJsonMode: false,
      holdNew: "",
      failMatching: "",
      failStatus: 503,
      metrics: true,
    });
    await (await fetch(`http://127.0.0.1:${env.SIM_PORTS[name]}/release`, { method: "POST", body: "{}" })).arrayBuffer();
    await resetSimStats(name);
  }
}

/** Zeroes a sim's counters. */
export async function resetSimStats(name: SimName): Promise<void> {
  await (await fetch(`http://127.0.0.1:${env.SIM_PORTS[name]}/stats/reset`, { method: "POST" })).arrayBuffer();
}

let tenantCounter = 0;

/** A fresh tenant (unique name, so tests never share gate state) with an API key. */
export async function createTenant(
  config: TenantConfigInput,
  name = `t${Date.now().toString(36)}${tenantCounter++}`,
): Promise<{ tenant: string; key: string }> {
  const key = `sk-test-${name}-${crypto.randomUUID()}`;
  const fetch = (url: string, init: RequestInit) => SELF.fetch(url, init);
  await createTenantWithKey({ fetch, baseUrl: "https://sluice.test", adminToken: env.ADMIN_TOKEN, name, config, key });
  return { tenant: name, key };
}

/** simConfig with every backend marked resumable (`resume: true`). */
export function resumableConfig(sims: SimName[], overrides: Partial<TenantConfigInput> = {}): TestConfig {
  const config = simConfig(sims, overrides);
  return { ...config, backends: config.backends.map((b) => ({ ...b, resume: true })) };
}

/** A config with one backend per named sim, all serving model "sim-model" under alias "chat". */
export function simConfig(sims: SimName[], overrides: Partial<TenantConfigInput> = {}): TestConfig {
  return {
    backends: sims.map((s) => ({ id: s, region: s === "b" ? "eu-west" : "us-east", url: simUrl(s), model: "sim-model" })),
    models: { chat: { route: sims, order: "pinned" } },
    ...overrides,
  };
}

export function chat(
  key: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return SELF.fetch("https://sluice.test/v1/chat/completions", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal,
  });
}

/** A tenant on sim "a" with one slot and a queue behind it. */
export const oneSlot = (limits: Record<string, number> = {}) =>
  simConfig(["a"], { limits: { maxConcurrency: 1, maxQueue: 8, maxQueueWaitMs: 10_000, ...limits } });

/** A request that holds the tenant's only slot for about `ms`. */
export const blocker = (key: string, ms: number) => chat(key, { model: "chat", messages: MESSAGES, sim_fault: { ttft_ms: ms } });

/**
 * A request that holds a slot (the tenant's, and one of sim "a"'s) until `release(hold)`: held in
 * the sim before its first token, for as long as the test needs, however slow the machine is.
 */
export function holder(
  key: string,
  hold: string,
  body: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<Response> {
  return chat(key, { model: "chat", messages: MESSAGES, ...body, sim_fault: { hold } }, headers);
}

/** Lets the generations held under `hold` go on (see holder). */
export async function release(hold: string, sim: SimName = "a"): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${env.SIM_PORTS[sim]}/release`, { method: "POST", body: JSON.stringify({ hold }) });
  await res.arrayBuffer();
}

export const MESSAGES = [{ role: "user", content: "Say something deterministic." }];

/** What the sim answers for these messages, uninterrupted. */
export function expectedText(messages: unknown[] = MESSAGES, maxTokens?: number): string {
  return simExpectedText({ model: "sim-model", messages, maxTokens });
}

export async function gateStats(tenant: string): Promise<any> {
  return (await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/stats`, { headers: ADMIN })).json();
}

/** An OpenAI-shaped error answer: the status, the code (a string is matched exactly) and, if given, the message. */
export async function expectError(res: Response, status: number, code: string | RegExp, message?: RegExp): Promise<void> {
  expect(res.status).toBe(status);
  const body: any = await res.json();
  if (typeof code === "string") expect(body.error.code).toBe(code);
  else expect(body.error.code).toMatch(code);
  expect(typeof body.error.type).toBe("string");
  if (message) expect(body.error.message).toMatch(message);
}

/** A gate object by name: a tenant's first gate is named after the tenant (gateName for its other shards). */
export function gateOf(name: string): DurableObjectStub<TenantGate> {
  return env.TENANT_GATE.get(env.TENANT_GATE.idFromName(name));
}

/** Leases the gate has written to storage (rows are written behind, LEASE_FLUSH_MS after a change). */
export function storedLeases(tenant: string): Promise<number> {
  return runInDurableObject(
    gateOf(tenant),
    (_instance, state) => state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM leases`).one().n,
  );
}

/**
 * As if the Workers holding the tenant's leases died long ago: once the leases are in storage, their
 * deadlines are moved into the past there, and the gate restarts (as after an eviction) from storage.
 */
export async function expireLeases(tenant: string, count: number): Promise<void> {
  await eventually(async () => (await storedLeases(tenant)) === count);
  await runInDurableObject(gateOf(tenant), (_instance, state) => {
    const past = Date.now() - 1;
    state.storage.sql.exec(`UPDATE leases SET deadline = ?, data = json_set(data, '$.deadline', ?)`, past, past);
  });
  await abortAllDurableObjects();
}

/** The webhook receiver of globalSetup (sim/webhook-receiver.ts). */
export const RECEIVER = `http://127.0.0.1:${env.WEBHOOK_PORT}`;

export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  status: number;
}

/** What the receiver got at `path`, oldest first. */
export async function received(path: string): Promise<Received[]> {
  return (await fetch(`${RECEIVER}/received?path=${encodeURIComponent(path)}`)).json();
}

/** Makes the receiver answer `path` with `status` (the next `times` requests only, when given). */
export async function answerWith(path: string, status: number, times?: number): Promise<void> {
  await (await fetch(`${RECEIVER}/answer`, { method: "POST", body: JSON.stringify({ path, status, times }) })).arrayBuffer();
}

/** The tenant's current webhook signing secret. */
export async function signingSecret(tenant: string): Promise<string> {
  const res = await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/alerts/signing-secret`, { headers: ADMIN });
  return ((await res.json()) as { secret: string }).secret;
}

/** Polls a resource (an async generation, a background response) until its `status` is `status`; its last body. */
export async function untilStatus(read: () => Promise<Response>, status: string, timeoutMs = 60_000): Promise<any> {
  let body: any;
  await eventually(async () => {
    body = await (await read()).json();
    return body.status === status;
  }, timeoutMs);
  return body;
}

/**
 * The request log lines the Worker writes (it runs in this isolate, so its console is the test's),
 * collected from now until the test ends.
 */
export function captureRequestLines(): RequestLine[] {
  const lines: RequestLine[] = [];
  vi.spyOn(console, "log").mockImplementation((text: unknown) => {
    const line = JSON.parse(String(text)) as RequestLine;
    if (line.msg === "request") lines.push(line);
  });
  onTestFinished(() => {
    vi.restoreAllMocks();
  });
  return lines;
}

/** The one log line of the request `res` answered, once written (a streamed answer's comes when it ends). */
export async function lineOf(lines: RequestLine[], res: Response): Promise<RequestLine> {
  const id = res.headers.get("x-request-id");
  expect(id).toBeTruthy();
  await eventually(async () => lines.some((l) => l.requestId === id));
  const matching = lines.filter((l) => l.requestId === id);
  expect(matching).toHaveLength(1);
  return matching[0]!;
}
