// Routing by what the GPU servers report of their own load (their Prometheus /metrics): a server
// whose own queue grows loses new requests to another of the same model; one without /metrics
// still serves; a shared pool reads its backends' metrics and hands them to the gates that use them.
import { beforeEach, describe, expect, it } from "vitest";
import {
  captureRequestLines,
  chat,
  createTenant,
  eventually,
  gateStats,
  lineOf,
  MESSAGES,
  release,
  resetSims,
  simConfig,
  simControl,
  simStats,
} from "./helpers";

beforeEach(resetSims);

const WAIT_MS = 60_000;
const backendOf = async (tenant: string, id: string) => (await gateStats(tenant)).backends.find((b: { id: string }) => b.id === id);

describe("backend load from /metrics", () => {
  it("sends new requests away from a server whose own queue grows, to one of the same model that queues none", {
    timeout: 3 * WAIT_MS,
  }, async () => {
    // a first (pinned), b second: without a report from a, every request goes to a while it has slots.
    const { tenant, key } = await createTenant(simConfig(["a", "b"]));
    // Sim a runs one generation at a time: two more held requests wait inside it.
    await simControl("a", { maxConcurrency: 1 });
    const held = Array.from({ length: 3 }, async () => {
      const res = await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 4, sim_fault: { hold: "queue", backend: "a" } });
      await res.arrayBuffer();
      return res.headers.get("x-sluice-backend");
    });
    await eventually(async () => (await simStats("a")).waiting === 2, WAIT_MS);
    // The gate reads a's metrics (every 2 s while requests come): a reports 2 waiting.
    await eventually(async () => (await backendOf(tenant, "a"))?.reported?.waiting === 2, WAIT_MS);
    // It runs 1 of the 3 this gate sent it: it is held to 1 (its limit in the stats) until its queue is gone.
    expect(await backendOf(tenant, "a")).toMatchObject({ inFlight: 3, limit: 1, reported: { running: 1, waiting: 2, kvCacheUsage: 1 } });
    const lines = captureRequestLines();
    const res = await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 4 });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-backend")).toBe("b");
    await res.arrayBuffer();
    // Its log line says why: passed over a server with a longer queue.
    expect((await lineOf(lines, res)).attempts.map((a) => [a.backend, a.route])).toEqual([["b", "least_loaded"]]);
    let ended = false;
    const all = Promise.all(held).finally(() => (ended = true));
    await eventually(async () => {
      await release("queue");
      return ended;
    }, WAIT_MS);
    expect(await all).toEqual(["a", "a", "a"]);
  });

  it("serves through a server without /metrics, which reports nothing", { timeout: 2 * WAIT_MS }, async () => {
    await simControl("a", { metrics: false });
    const { tenant, key } = await createTenant(simConfig(["a", "b"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 4 });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-backend")).toBe("a");
    await res.arrayBuffer();
    // b's metrics were read (the poller ran), a's could not be: a reports nothing and still takes requests.
    await eventually(async () => (await backendOf(tenant, "b"))?.reported !== undefined, WAIT_MS);
    expect(await backendOf(tenant, "a")).not.toHaveProperty("reported");
    const again = await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 4 });
    expect(again.headers.get("x-sluice-backend")).toBe("a");
    await again.arrayBuffer();
  });
});
