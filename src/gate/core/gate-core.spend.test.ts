// The gate core's side of spend: each attempt's ledger entries, a request's cost at its settle, the
// budgets charged at admission and settled at the end, and an API key's own limits.
import { describe, expect, it } from "vitest";
import type { TenantConfigInput } from "../../config/schema";
import { admit, failure, leaseOf, request, testBackend, testConfig, testCore } from "./test-host";
import type { AttemptReport } from "./protocol";
import { GateCore } from "./gate-core";

const T0 = Date.UTC(2026, 11, 7, 12);
// $1 per million prompt tokens and $1,000 per million output tokens: one output token costs $0.001.
const priced = { price: { inputPerMTok: 1, outputPerMTok: 1000 } };

function spendCore(extra: Partial<TenantConfigInput> = {}) {
  return testCore(
    testConfig({
      backends: [testBackend("a", "us-east", priced), testBackend("b", "eu-west", priced), testBackend("c", "us-east")],
      models: { chat: { route: ["a", "b"], order: "pinned" }, cheap: { route: ["c"] } },
      ...extra,
    }),
    T0,
  );
}

const served = (backendId: string, output: number, input = 1000): AttemptReport => ({
  backendId,
  outcome: "success",
  durationMs: 5,
  chunks: output,
  usage: { input, output, cachedInput: 0, estimated: false },
});

describe("the gate core's spend", () => {
  it("records each attempt in the ledger, served and wasted apart, and tells the request's cost at its settle", () => {
    const { core, host } = spendCore();
    const { leaseId } = leaseOf(admit(core, host, request("r", { key: { id: "k1" } }), T0));
    const failed = failure("a", { usage: { input: 1000, output: 0, cachedInput: 0, estimated: true } });
    expect(core.retry(leaseId, failed, { deliveredChunks: 0, mustContinue: false }, T0)).toMatchObject({ kind: "attempt" });
    const cost = core.settle(leaseId, served("b", 10), "complete", undefined, T0);
    expect(host.spendEntries).toMatchObject([
      { day: "2026-12-07", keyId: "k1", alias: "chat", backendId: "a", kind: "wasted", cause: "failed", estimated: 1 },
      { keyId: "k1", alias: "chat", backendId: "b", kind: "served", outputTokens: 10, attempts: 1 },
    ]);
    expect(cost!.usd).toBeCloseTo(0.001 + 0.001 + 0.01, 12);
    expect(cost).toMatchObject({ tokens: 2010, estimated: true });
    const spend = core.stats("t", { entries: 0, bytes: 0 }, T0).spend;
    expect(spend.chat!.served).toBeCloseTo(0.011, 12);
    expect(spend.chat!.wasted).toBeCloseTo(0.001, 12);
  });

  it("refuses a request its budget cannot hold with everything in flight, and lets one in again once spend settles lower", () => {
    // $0.25 a day; a request of max_tokens 100 may cost 1,000 x $1e-6 + 100 x $0.001 = $0.101.
    const { core, host } = spendCore({ budgets: [{ name: "daily", period: "day", limit: 0.25 }] });
    const leases = [0, 1].map((i) => leaseOf(admit(core, host, request(`r${i}`, { promptTokens: 1000, maxTokens: 100 }), T0)));
    const refused = admit(core, host, request("r2", { promptTokens: 1000, maxTokens: 100 }), T0);
    expect(refused).toMatchObject({ kind: "reject", status: 429, code: "budget_exceeded", retryAfterSec: 12 * 3600 });
    expect((refused as { message: string }).message).toBe(
      'Budget "daily" of this tenant ($0.25 a day) is spent; it resets at 2026-12-08T00:00:00.000Z.',
    );
    // One settles at a tenth of its charge: room for another.
    core.settle(leases[0]!.leaseId, served("a", 10), "complete", undefined, T0);
    expect(admit(core, host, request("r3", { promptTokens: 1000, maxTokens: 100 }), T0).kind).toBe("lease");
    expect(core.spend.status(undefined, T0)[0]).toMatchObject({ spent: expect.closeTo(0.011, 9), held: expect.closeTo(0.202, 9) });
    expect(core.stats("t", { entries: 0, bytes: 0 }, T0).counters.rejectedBudget).toBe(1);
    // A new day: the budget starts over, but what requests in flight were charged still holds.
    const tomorrow = T0 + 86_400_000;
    expect(admit(core, host, request("r4", { promptTokens: 1000, maxTokens: 100 }), tomorrow).kind).toBe("reject");
    core.settle(leases[1]!.leaseId, served("a", 10), "complete", undefined, tomorrow);
    expect(admit(core, host, request("r4", { promptTokens: 1000, maxTokens: 100 }), tomorrow).kind).toBe("lease");
  });

  it("gives a budget charge back when the request gets no slot", () => {
    const { core, host } = spendCore({
      budgets: [{ name: "daily", period: "day", limit: 1 }],
      limits: { maxConcurrency: 1, maxQueue: 0 },
    });
    leaseOf(admit(core, host, request("r0", { promptTokens: 1000, maxTokens: 100 }), T0));
    expect(admit(core, host, request("r1", { promptTokens: 1000, maxTokens: 100 }), T0)).toMatchObject({ code: "queue_full" });
    expect(core.spend.status(undefined, T0)[0]!.held).toBeCloseTo(0.101, 9);
  });

  it("holds an API key's own budgets, limits and concurrency besides the tenant's", () => {
    const { core, host } = spendCore();
    const key = {
      id: "k1",
      maxConcurrency: 1,
      budgets: [{ name: "tokens", period: "month" as const, unit: "tokens" as const, limit: 5000 }],
    };
    const first = leaseOf(admit(core, host, request("r0", { key, promptTokens: 1000, maxTokens: 1000 }), T0));
    expect(admit(core, host, request("r1", { key, promptTokens: 10, maxTokens: 10 }), T0)).toMatchObject({
      status: 429,
      code: "concurrency_limited",
    });
    // Another key is not held back by this one's limits.
    expect(admit(core, host, request("other", { key: { id: "k2" }, promptTokens: 10 }), T0).kind).toBe("lease");
    core.settle(first.leaseId, served("a", 3500, 1000), "complete", undefined, T0);
    // 4,500 tokens of 5,000 spent this month: a request that may use 1,000 more is refused.
    expect(admit(core, host, request("r2", { key, promptTokens: 500, maxTokens: 500 }), T0)).toMatchObject({
      code: "budget_exceeded",
      message: expect.stringContaining('Budget "tokens" of this API key (5000 tokens a month)'),
    });
    const limited = { id: "k3", requestsPerMinute: 1 };
    const one = leaseOf(admit(core, host, request("q0", { key: limited }), T0));
    core.settle(one.leaseId, served("a", 1), "complete", undefined, T0);
    expect(admit(core, host, request("q1", { key: limited }), T0)).toMatchObject({
      code: "rate_limited",
      message: expect.stringContaining("API key"),
    });
  });

  it("sends requests to the cheaper alias once a budget is past its soft threshold, and asks for an alert evaluation", () => {
    const { core, host } = spendCore({ budgets: [{ name: "daily", period: "day", limit: 1, softAt: 0.5, softRoute: "cheap" }] });
    const { leaseId } = leaseOf(admit(core, host, request("r0", { promptTokens: 1000, maxTokens: 900 }), T0));
    const urgent = host.urgentAlertRequests;
    core.settle(leaseId, served("a", 600), "complete", undefined, T0);
    expect(host.urgentAlertRequests).toBe(urgent + 1);
    const next = leaseOf(admit(core, host, request("r1", { promptTokens: 10, maxTokens: 10 }), T0));
    expect(next.grant.backend).toMatchObject({ id: "c", alias: "cheap" });
    expect(next.degradations).toContain("budget:daily");
    // A model the tenant does not have is still one it does not have.
    expect(admit(core, host, request("r2", { alias: "nope" }), T0)).toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("fires a budget alert through the alert path once a budget passes its soft threshold", () => {
    const { core, host } = spendCore({
      budgets: [{ name: "daily", period: "day", limit: 1, softAt: 0.5 }],
      alerts: { webhooks: [{ id: "ops", url: "https://ops.example/hook" }], rules: [{ id: "spend", kind: "budget" }] },
    });
    const { leaseId } = leaseOf(admit(core, host, request("r0", { promptTokens: 1000, maxTokens: 900 }), T0));
    expect(core.alerts.evaluate("t", 0, () => "m1", T0).messages).toEqual([]);
    core.settle(leaseId, served("a", 600), "complete", undefined, T0);
    const { messages } = core.alerts.evaluate("t", 0, () => "m2", T0 + 1);
    expect(messages).toMatchObject([
      { webhook: { id: "ops" }, event: { type: "alert.firing", kind: "budget", budget: "tenant/daily", rule: "spend" } },
    ]);
    expect(messages[0]!.event.summary).toBe('Budget "daily" of the tenant has spent $0.601 of $1 (alert at $0.5).');
  });

  it("still counts the spend of a request whose charge a restart of the gate forgot", () => {
    const config = testConfig({
      backends: [testBackend("a", "us-east", priced)],
      models: { chat: { route: ["a"] } },
      budgets: [{ name: "daily", period: "day", limit: 1 }],
    });
    const { core, host } = testCore(config, T0);
    const { leaseId } = leaseOf(admit(core, host, request("r0", { promptTokens: 1000, maxTokens: 100 }), T0));
    // The gate restarts: its leases come back from storage, its charges in memory do not.
    const restarted = new GateCore(host, undefined, undefined, host.budgets);
    restarted.loadConfig(config, 0, new Map(), T0);
    restarted.leases.restore([...host.stored.values()]);
    restarted.settle(leaseId, served("a", 10), "complete", undefined, T0);
    expect(restarted.spend.status(undefined, T0)[0]).toMatchObject({ spent: expect.closeTo(0.011, 9), held: 0 });
  });

  it("holds a sharded tenant's budgets at shard 0: another shard's requests are charged there, their ends told there", () => {
    const config = testConfig({
      backends: [testBackend("a", "us-east", { ...priced, maxConcurrency: 4 })],
      models: { chat: { route: ["a"] } },
      limits: { shards: 2, maxConcurrency: 4 },
      budgets: [{ name: "daily", period: "day", limit: 1 }],
    });
    const holder = testCore(config, T0);
    const other = testCore();
    other.core.loadConfig(config, 1, new Map(), T0);
    // The shell charged it at shard 0 first (budget-link.ts): shard 1 admits it without a charge of its own.
    const charged = holder.core.spend.chargeHeld({ requestId: "r0", alias: "chat" }, { usd: 0.5, tokens: 0 }, T0);
    expect(charged).toEqual({ ok: true, softRoute: undefined });
    const { leaseId } = leaseOf(admit(other.core, other.host, request("r0", { budgetHeld: {}, key: { id: "k1" } }), T0));
    expect(other.core.spend.status(undefined, T0)[0]).toMatchObject({ held: 0 });
    other.core.settle(leaseId, served("a", 10), "complete", undefined, T0);
    expect(other.host.heldSettles).toEqual([{ holdId: "r0", actual: { usd: expect.closeTo(0.011, 9), tokens: 1010 }, keyId: "k1" }]);
    holder.core.spend.settleHeld("r0", { usd: 0.011, tokens: 1010 }, T0, "k1");
    expect(holder.core.spend.status(undefined, T0)[0]).toMatchObject({ spent: expect.closeTo(0.011, 9), held: 0 });
    // Told of a request whose charge a restart of shard 0 forgot: its spend still counts.
    holder.core.spend.settleHeld("r-before-restart", { usd: 0.2, tokens: 0 }, T0, "k1");
    expect(holder.core.spend.status(undefined, T0)[0]!.spent).toBeCloseTo(0.211, 9);
  });

  it("charges a request whose Worker went silent what it was charged at admission", () => {
    const { core, host } = spendCore({ budgets: [{ name: "daily", period: "day", limit: 1 }] });
    leaseOf(admit(core, host, request("r0", { promptTokens: 1000, maxTokens: 100 }), T0));
    core.reclaimExpired(T0 + 3_600_000);
    expect(core.spend.status(undefined, T0 + 3_600_000)[0]).toMatchObject({ spent: expect.closeTo(0.101, 9), held: 0 });
  });
});
