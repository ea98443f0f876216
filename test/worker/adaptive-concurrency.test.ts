// A backend with adaptiveConcurrency against a real sim: its learned limit falls when its first
// tokens come late and grows back once they are fast again, with no request failed on the way; a
// slow backend's timeouts are retried elsewhere without the retry budget, its breaker left closed.
import { beforeEach, describe, expect, it } from "vitest";
import { chat, createTenant, eventually, gateStats, MESSAGES, resetSims, simConfig } from "./helpers";

beforeEach(resetSims);

const WAIT_MS = 60_000;

/** Sim a (adaptive, 8 at once) first, sim b behind it under another model name, so a sim_fault naming sim-model slows a alone. */
const adaptiveConfig = (overrides: Record<string, unknown> = {}) => {
  const config = simConfig(["a", "b"], overrides);
  return {
    ...config,
    backends: config.backends.map((b) =>
      b.id === "a" ? { ...b, maxConcurrency: 8, adaptiveConcurrency: true } : { ...b, model: "other-model" },
    ),
  };
};

const backendA = async (tenant: string) => (await gateStats(tenant)).backends.find((b: { id: string }) => b.id === "a");

describe("adaptiveConcurrency", () => {
  it("lowers a backend's limit while its first tokens come late, and raises it back once they are fast, failing nothing", async () => {
    const { tenant, key } = await createTenant(adaptiveConfig());
    const ask = (fault?: Record<string, unknown>) =>
      chat(key, { model: "chat", messages: MESSAGES, max_tokens: 4, ...(fault ? { sim_fault: fault } : {}) });
    const statuses: number[] = [];
    const send = async (fault?: Record<string, unknown>) => {
      const res = await ask(fault);
      statuses.push(res.status);
      await res.arrayBuffer();
    };
    // Its unloaded first-token time first.
    for (let i = 0; i < 3; i++) await send();
    expect(await backendA(tenant)).toMatchObject({ limit: 8, maxConcurrency: 8 });
    // Two waves of eight whose first tokens take 1.5 s: queueing, as a GPU server's own queue would show it.
    for (let wave = 0; wave < 2; wave++) await Promise.all(Array.from({ length: 8 }, () => send({ model: "sim-model", ttft_ms: 1_500 })));
    const cut = (await backendA(tenant)).limit;
    expect(cut).toBeLessThan(8);
    // Fast again: twelve clients keep a at its limit (the rest go to b) until it is back at 8.
    let stop = false;
    const clients = Array.from({ length: 12 }, async () => {
      while (!stop) await send();
    });
    await eventually(async () => (await backendA(tenant)).limit === 8, WAIT_MS).finally(() => (stop = true));
    await Promise.all(clients);
    expect(statuses.every((s) => s === 200)).toBe(true);
  });

  it("retries a slow backend's timeout elsewhere without the retry budget, and leaves its breaker closed", async () => {
    const { tenant, key } = await createTenant(
      adaptiveConfig({
        timeouts: { firstTokenMs: 500 },
        // No retry at all from the budget: any retry below is one it did not count.
        retry: { maxAttempts: 3, budgetRatio: 0, budgetMinRetries: 0 },
        breaker: { consecutiveFailures: 2 },
      }),
    );
    const fast = await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 4 });
    expect(fast.headers.get("x-sluice-backend")).toBe("a");
    await fast.arrayBuffer();
    for (let i = 0; i < 3; i++) {
      const res = await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 4, sim_fault: { model: "sim-model", ttft_ms: 2_000 } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const stats = await gateStats(tenant);
    expect(stats.counters).toMatchObject({ slowTimeouts: 3, budgetDenied: 0 });
    expect(stats.backends.find((b: { id: string }) => b.id === "a")).toMatchObject({ breaker: "closed" });
  });
});
