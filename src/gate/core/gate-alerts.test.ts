// The gate core's alerting: what an evaluation sends (one message per change and webhook), and when
// it asks to be evaluated again.
import { describe, expect, it } from "vitest";
import { ALERT_EVALUATE_MS, ALERT_IDLE_EVALUATE_MS } from "./gate-alerts";
import { admit, failure, request, success, testConfig, testCore } from "./test-host";
import type { TenantConfigInput } from "../../config/schema";

const hooks = [
  { id: "ops", url: "https://hooks.example/ops" },
  { id: "pager", url: "https://hooks.example/pager" },
];
let ids = 0;
const newId = () => `alert-${++ids}`;

/** A tenant whose breaker on "a" opens at the second failure in a row, watched by a breaker rule. */
function watched(rules: NonNullable<TenantConfigInput["alerts"]>["rules"] = [{ id: "down", kind: "breaker_open", backends: ["a"] }]) {
  return testCore(
    testConfig({
      retry: { maxAttempts: 1 },
      breaker: { consecutiveFailures: 2, cooldownMs: 1_000, maxCooldownMs: 1_000 },
      alerts: { webhooks: hooks, rules, cooldownSeconds: 0 },
    }),
  );
}

/** One request to "a" that fails, at `now`. */
function failOnce(core: ReturnType<typeof testCore>["core"], host: ReturnType<typeof testCore>["host"], id: string, now: number) {
  const lease = admit(core, host, request(id), now);
  if (lease.kind !== "lease") throw new Error(`no lease: ${lease.kind}`);
  core.settle(lease.leaseId, failure("a"), "failed", undefined, now, 502);
}

describe("gate alerts", () => {
  it("asks for an evaluation once when things start to happen, and only if the tenant has rules", () => {
    const { core, host } = watched();
    failOnce(core, host, "r1", 0);
    failOnce(core, host, "r2", 1);
    expect(host.alertRequests).toBe(1);
    const quiet = testCore(testConfig());
    failOnce(quiet.core, quiet.host, "r1", 0);
    expect(quiet.host.alertRequests).toBe(0);
  });

  it("asks for an evaluation after rules are added to a tenant that already had traffic", () => {
    const { core, host } = testCore(testConfig({ retry: { maxAttempts: 1 } }));
    failOnce(core, host, "before", 0);
    expect(host.alertRequests).toBe(0);
    core.applyConfig(
      testConfig({ retry: { maxAttempts: 1 }, alerts: { webhooks: hooks, rules: [{ id: "dead", kind: "dead_letters", perMinute: 1 }] } }),
      0,
      new Map(),
      1,
    );
    failOnce(core, host, "after", 2);
    expect(host.alertRequests).toBe(1);
    expect(core.alerts.evaluate("acme", 0, newId, 10).messages.map((m) => m.event.rule)).toEqual(["dead", "dead"]);
  });

  it("sends a breaker opening to every webhook, as one event, then evaluates every few seconds while it fires", () => {
    const { core, host } = watched();
    failOnce(core, host, "r1", 0);
    expect(host.urgentAlertRequests).toBe(0);
    failOnce(core, host, "r2", 1);
    // The breaker opened: evaluate at once, not at the next tick.
    expect(host.urgentAlertRequests).toBe(1);
    const first = core.alerts.evaluate("acme", 0, newId, 10);
    expect(first.messages.map((m) => m.webhook.id)).toEqual(["ops", "pager"]);
    expect(first.messages[0]!.event).toEqual(first.messages[1]!.event);
    expect(first.messages[0]!.event).toMatchObject({
      type: "alert.firing",
      tenant: "acme",
      shard: 0,
      rule: "down",
      kind: "breaker_open",
      backend: "a",
      state: "firing",
      since: new Date(10).toISOString(),
      figures: { breaker: "open", failures: 2, successes: 0 },
    });
    expect(first.next).toBe(10 + ALERT_EVALUATE_MS);
    // Nothing happened since: the next look is a minute away, and sends nothing.
    const idle = core.alerts.evaluate("acme", 0, newId, first.next!);
    expect(idle.messages).toEqual([]);
    expect(idle.next).toBe(first.next! + ALERT_IDLE_EVALUATE_MS);
    expect(core.alerts.active()).toMatchObject([{ key: "down/a", state: "firing" }]);
  });

  it("resolves once the probe closes the breaker, then stops asking to be evaluated", () => {
    const { core, host } = watched();
    failOnce(core, host, "r1", 0);
    failOnce(core, host, "r2", 1);
    core.alerts.evaluate("acme", 0, newId, 10);
    const probe = admit(core, host, request("probe"), 2_000);
    if (probe.kind !== "lease") throw new Error("no lease for the probe");
    core.settle(probe.leaseId, success("a"), "complete", undefined, 2_001);
    const after = core.alerts.evaluate("acme", 0, newId, 2_010);
    expect(after.messages.map((m) => [m.webhook.id, m.event.type, m.event.since])).toEqual([
      ["ops", "alert.resolved", new Date(10).toISOString()],
      ["pager", "alert.resolved", new Date(10).toISOString()],
    ]);
    // The activity just seen is looked at once more; then, with nothing tracked, no more evaluations.
    expect(after.next).toBe(2_010 + ALERT_EVALUATE_MS);
    expect(core.alerts.evaluate("acme", 0, newId, after.next!).next).toBeUndefined();
  });

  it("sends a rule's messages only to the webhooks it names, and asks to be woken when a pending rule is due", () => {
    const { core, host } = watched([{ id: "dead", kind: "dead_letters", perMinute: 1, forSeconds: 30, webhooks: ["pager"] }]);
    failOnce(core, host, "r1", 0);
    const pending = core.alerts.evaluate("acme", 0, newId, 100);
    expect(pending.messages).toEqual([]);
    expect(core.alerts.active()).toMatchObject([{ key: "dead", state: "pending", since: 100 }]);
    expect(pending.next).toBe(100 + ALERT_EVALUATE_MS);
    failOnce(core, host, "r2", 29_000); // keeps the last minute's count up, and the core busy
    const due = core.alerts.evaluate("acme", 0, newId, 30_100);
    expect(due.messages.map((m) => [m.webhook.id, m.event.type, m.event.figures])).toEqual([
      ["pager", "alert.firing", { deadLetters: 2, perMinute: 1 }],
    ]);
  });

  it("counts only failures told as 5xx as dead letters, as the Worker writes them", () => {
    const { core, host } = watched([{ id: "dead", kind: "dead_letters", perMinute: 1 }]);
    const lease = admit(core, host, request("bad-request"), 0);
    if (lease.kind !== "lease") throw new Error("no lease");
    core.settle(lease.leaseId, failure("a"), "failed", undefined, 1, 400);
    expect(core.alerts.evaluate("acme", 0, newId, 10).messages).toEqual([]);
  });
});
