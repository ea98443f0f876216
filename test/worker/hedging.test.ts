// Hedged first tokens against real sims: an attempt whose first token is late (held in its sim) gets
// a hedge on another backend of the model; the first to produce a token is the one the client gets,
// the other is cancelled at its sim; a hedge that fails leaves the attempt it hedged to go on; and
// the hedge budget stops hedging when everything is slow.
import { beforeEach, describe, expect, it } from "vitest";
import {
  captureRequestLines,
  chat,
  createTenant,
  eventually,
  expectedText,
  gateStats,
  lineOf,
  MESSAGES,
  readSse,
  release,
  resetSims,
  resetSimStats,
  simConfig,
  simControl,
  simStats,
} from "./helpers";

beforeEach(resetSims);

const WAIT_MS = 60_000;
const WARM_UP = 4;

/** Backends a then b (pinned), hedging on; `WARM_UP` requests give the gate the model's first tokens. */
async function hedgingTenant(hedging: Record<string, unknown> = {}) {
  const tenant = await createTenant(
    simConfig(["a", "b"], {
      models: { chat: { route: ["a", "b"], order: "pinned" } },
      limits: { maxConcurrency: 16, maxQueue: 16 },
      // One budget window for the whole test, however slow the machine.
      retry: { budgetWindowMs: 3_600_000 },
      hedging: { enabled: true, minSamples: WARM_UP, minDelayMs: 1, budgetRatio: 1, ...hedging },
    }),
  );
  for (let i = 0; i < WARM_UP; i++) {
    const res = await chat(tenant.key, { model: "chat", messages: MESSAGES, max_tokens: 4 });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  }
  await resetSimStats("a");
  await resetSimStats("b");
  return { ...tenant, before: (await gateStats(tenant.tenant)).counters };
}

/** Waits until `n` of the test's requests ended complete at the gate: a settle reaches it just after the client read the stream's end. */
async function completed(tenant: string, before: Record<string, number>, n: number): Promise<void> {
  await eventually(async () => ((await counted(tenant, before, ["completed"])).completed ?? 0) >= n, WAIT_MS);
}

/** The tenant's counters now, less those before the test's own requests. */
async function counted(tenant: string, before: Record<string, number>, names: string[]): Promise<Record<string, number>> {
  const now = (await gateStats(tenant)).counters;
  return Object.fromEntries(names.map((n) => [n, now[n] - (before[n] ?? 0)]));
}

const streamed = (key: string, fault: Record<string, unknown>) =>
  chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: fault });

describe("hedged first tokens", () => {
  it("hedges a late first token on the other backend: the hedge's answer reaches the client, the late attempt is cancelled at its sim", {
    timeout: 2 * WAIT_MS,
  }, async () => {
    const { key, tenant, before } = await hedgingTenant();
    const lines = captureRequestLines();
    // Held in sim a before its first token, for as long as the test lasts; sim b answers.
    const res = await streamed(key, { backend: "a", hold: "late" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-backend")).toBe("b");
    const { text, done } = await readSse(res);
    expect(done).toBe(true);
    expect(text).toBe(expectedText());
    await eventually(async () => (await simStats("a")).cancelled === 1, WAIT_MS);
    expect(await simStats("a")).toMatchObject({ held: 0, completed: 0 });
    expect(await simStats("b")).toMatchObject({ completed: 1, cancelled: 0 });
    await completed(tenant, before, 1);
    expect(await counted(tenant, before, ["hedgesStarted", "hedgesWon", "hedgesDenied", "completed"])).toEqual({
      hedgesStarted: 1,
      hedgesWon: 1,
      hedgesDenied: 0,
      completed: 1,
    });
    const stats = await gateStats(tenant);
    expect(stats.counters.hedgeWastedPromptTokens).toBeGreaterThan(before.hedgeWastedPromptTokens ?? 0);
    // The log line tells the race: the late attempt lost, the hedge answered.
    const line = await lineOf(lines, res);
    expect(line.attempts.map((a) => [a.backend, a.route, a.outcome, a.code])).toEqual([
      ["a", "pinned", "cancelled", "hedge_lost"],
      ["b", "hedge", "success", undefined],
    ]);
    expect(line.backend).toBe("b");
    expect(
      stats.backends.map((b: { id: string; inFlight: number; hedged: number; hedges: number }) => [b.id, b.inFlight, b.hedged, b.hedges]),
    ).toEqual([
      ["a", 0, 1, 0],
      ["b", 0, 0, 1],
    ]);
  });

  it("keeps the hedged attempt when its first token comes first, and cancels the hedge at its sim", { timeout: 2 * WAIT_MS }, async () => {
    const { key, tenant, before } = await hedgingTenant();
    // Held in both sims: the hedge starts on b, then a is let go first.
    const pending = streamed(key, { hold: "both" });
    await eventually(async () => (await simStats("a")).held === 1 && (await simStats("b")).held === 1, WAIT_MS);
    await release("both", "a");
    const res = await pending;
    expect(res.headers.get("x-sluice-backend")).toBe("a");
    const { text, done } = await readSse(res);
    expect([text, done]).toEqual([expectedText(), true]);
    await eventually(async () => (await simStats("b")).cancelled === 1, WAIT_MS);
    expect(await simStats("b")).toMatchObject({ held: 0, completed: 0 });
    await completed(tenant, before, 1);
    expect(await counted(tenant, before, ["hedgesStarted", "hedgesWon", "completed"])).toEqual({
      hedgesStarted: 1,
      hedgesWon: 0,
      completed: 1,
    });
  });

  it("lets the hedged attempt go on when the hedge fails, and counts the failure against the hedge's backend", {
    timeout: 2 * WAIT_MS,
  }, async () => {
    const { key, tenant, before } = await hedgingTenant();
    // a holds; b answers every request 503.
    await simControl("b", { failRate: 1 });
    const pending = streamed(key, { backend: "a", hold: "a-only" });
    await eventually(async () => (await simStats("b")).failedInjected === 1, WAIT_MS);
    await release("a-only", "a");
    const res = await pending;
    expect(res.headers.get("x-sluice-backend")).toBe("a");
    expect(await readSse(res)).toMatchObject({ text: expectedText(), done: true });
    await completed(tenant, before, 1);
    expect(await counted(tenant, before, ["hedgesStarted", "hedgesWon", "completed", "retries"])).toEqual({
      hedgesStarted: 1,
      hedgesWon: 0,
      completed: 1,
      retries: 0,
    });
    const b = (await gateStats(tenant)).backends.find((x: { id: string }) => x.id === "b");
    expect(b.failures).toBe(1);
  });

  it("stops hedging at its budget when every first token is late", { timeout: 2 * WAIT_MS }, async () => {
    // budgetRatio 0: one hedge in the (hour-long) window, whatever the traffic.
    const { key, tenant, before } = await hedgingTenant({ budgetRatio: 0 });
    const pending = Array.from({ length: 4 }, () => streamed(key, { hold: "slow" }));
    // Each of the four asks for a hedge once its first token is late: one is started, three refused.
    await eventually(async () => {
      const c = await counted(tenant, before, ["hedgesStarted", "hedgesDenied"]);
      return c.hedgesStarted === 1 && c.hedgesDenied === 3;
    }, WAIT_MS);
    expect((await simStats("a")).held + (await simStats("b")).held).toBe(5);
    await release("slow", "a");
    await release("slow", "b");
    for (const res of await Promise.all(pending)) expect(await readSse(res)).toMatchObject({ text: expectedText(), done: true });
    await completed(tenant, before, 4);
    expect(await counted(tenant, before, ["hedgesStarted", "hedgesDenied", "completed"])).toEqual({
      hedgesStarted: 1,
      hedgesDenied: 3,
      completed: 4,
    });
  });
});
