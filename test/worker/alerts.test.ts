// Alerts end to end: rules in a tenant's config, evaluated by its gate's alarm, carried by the real
// (Miniflare) alert queue to a real webhook receiver (sim/webhook-receiver.ts), signed as Standard
// Webhooks; a receiver that keeps failing is retried, then dead-lettered and recorded.
import { SELF, abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { beforeEach, describe, expect, it } from "vitest";
import type { TenantConfigInput } from "../../src/config/schema";
import {
  ADMIN,
  chat,
  createTenant,
  eventually,
  expectedText,
  expectError,
  gateOf,
  gateStats,
  holder,
  MESSAGES,
  answerWith,
  RECEIVER,
  readSse,
  received,
  release,
  resetSims,
  signingSecret,
  simConfig,
} from "./helpers";

beforeEach(resetSims);

/** Alarms run every few seconds, and retries go through the queue: generous, never waited out when things work. */
const ALERT_WAIT_MS = 60_000;

const admin = (path: string, init: RequestInit = {}) =>
  SELF.fetch(`https://sluice.test/admin/tenants/${path}`, { ...init, headers: { ...ADMIN, "content-type": "application/json" } });

/** When the tenant's gate last evaluated its alert rules (as stored). */
function lastEvaluation(tenant: string): Promise<number> {
  return runInDurableObject(gateOf(tenant), (_gate, state) => {
    const row = state.storage.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'alerts'`).toArray()[0];
    return row ? (JSON.parse(row.value) as { evaluatedAt: number }).evaluatedAt : 0;
  });
}

/** A tenant on sim "a" whose breaker opens after two failures and lets a probe through 100 ms later. */
function outageConfig(hookPath: string, alerts: Record<string, unknown> = {}): TenantConfigInput {
  return simConfig(["a"], {
    retry: { maxAttempts: 1 },
    breaker: { consecutiveFailures: 2, cooldownMs: 100, maxCooldownMs: 100 },
    // The receiver listens on 127.0.0.1: the operator allows this tenant's webhooks there.
    outbound: { allowPrivateHosts: true },
    alerts: {
      webhooks: [{ id: "ops", url: `${RECEIVER}${hookPath}` }],
      rules: [{ id: "gpu-down", kind: "breaker_open" }],
      cooldownSeconds: 0,
      ...alerts,
    },
  });
}

const failing = { model: "chat", messages: MESSAGES, sim_fault: { status: 503 } };

describe("alerts", () => {
  it("an outage fires a signed 'breaker opened', and the recovery 'resolved', once each, across a gate restart", async () => {
    const hook = `/hooks/outage-${crypto.randomUUID()}`;
    const { tenant, key } = await createTenant(outageConfig(hook));
    for (let i = 0; i < 2; i++) await expectError(await chat(key, failing), 502, "max_attempts");
    // Opened; on a busy machine its 100 ms cooldown may have passed before this read (half-open), never closed without a success.
    expect(["open", "half-open"]).toContain((await gateStats(tenant)).backends[0].breaker);

    await eventually(async () => (await received(hook)).length >= 1, ALERT_WAIT_MS);
    const [firing] = await received(hook);
    // Verified as a receiver would, with the tenant's secret and the Standard Webhooks library.
    const payload = new Webhook(await signingSecret(tenant)).verify(firing!.body, firing!.headers) as any;
    expect(payload).toMatchObject({
      type: "alert.firing",
      data: {
        tenant,
        shard: 0,
        rule: "gpu-down",
        kind: "breaker_open",
        backend: "a",
        state: "firing",
        figures: { failures: 2, successes: 0 },
        dashboard: `http://localhost:8787/admin/dashboard?tenant=${tenant}`,
      },
    });
    // Evaluated by the alarm a few seconds later: by then the 100 ms cooldown may have let the breaker go half-open.
    expect(["open", "half-open"]).toContain(payload.data.figures.breaker);
    expect(payload.data.summary).toMatch(/^The circuit breaker of backend a is (open|half-open): 2 of 2 recent attempts failed\.$/);
    expect(firing!.headers["webhook-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect((await gateStats(tenant)).alerts).toMatchObject([{ key: "gpu-down/a", state: "firing" }]);

    // The gate restarts while the alert fires (a deploy, an eviction): it neither repeats the firing nor forgets it.
    await abortAllDurableObjects();
    // The backend is back: the probe succeeds, the breaker closes, the alert resolves.
    await eventually(async () => (await chat(key, { model: "chat", messages: MESSAGES })).status === 200);
    expect((await gateStats(tenant)).backends[0].breaker).toBe("closed");
    await eventually(async () => (await received(hook)).length >= 2, ALERT_WAIT_MS);
    const messages = await received(hook);
    const resolved = new Webhook(await signingSecret(tenant)).verify(messages[1]!.body, messages[1]!.headers) as any;
    expect(resolved).toMatchObject({
      type: "alert.resolved",
      data: { rule: "gpu-down", backend: "a", state: "resolved", since: payload.data.since },
    });
    expect((await gateStats(tenant)).alerts).toEqual([]);
    // Once per change: an evaluation after more traffic sends nothing new.
    const after = Date.now();
    expect((await chat(key, { model: "chat", messages: MESSAGES })).status).toBe(200);
    await eventually(async () => (await lastEvaluation(tenant)) > after, ALERT_WAIT_MS);
    expect((await received(hook)).map((m) => JSON.parse(m.body).type)).toEqual(["alert.firing", "alert.resolved"]);
  });

  it("a failing receiver is retried, then dead-lettered and listed; requests in flight meanwhile are unaffected", async () => {
    const hook = `/hooks/down-${crypto.randomUUID()}`;
    await answerWith(hook, 500);
    const { tenant, key } = await createTenant(outageConfig(hook, { rules: [{ id: "dead", kind: "dead_letters", perMinute: 1 }] }));
    // A stream in flight the whole time: held in the sim before its first token.
    const hold = `alerts-${crypto.randomUUID()}`;
    const inFlight = holder(key, hold, { stream: true, sim_fault: { hold, backend: "b" } });
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);

    await expectError(await chat(key, failing), 502, "max_attempts");
    // wrangler.toml: max_retries = 6, so seven tries, all with the same webhook-id, then the dead-letter queue.
    await eventually(async () => (await received(hook)).length >= 7, ALERT_WAIT_MS);
    const tries = await received(hook);
    expect(new Set(tries.map((t) => t.headers["webhook-id"])).size).toBe(1);
    expect(tries.every((t) => t.status === 500)).toBe(true);
    let listed: any[] = [];
    await eventually(async () => {
      listed = ((await (await admin(`${tenant}/alerts/undelivered`)).json()) as { data: any[] }).data;
      return listed.length === 1;
    }, ALERT_WAIT_MS);
    expect(listed[0]).toMatchObject({
      webhookId: "ops",
      reason: "the webhook failed every delivery the alert queue tried",
      event: { id: tries[0]!.headers["webhook-id"], tenant, rule: "dead", state: "firing", figures: { deadLetters: 1, perMinute: 1 } },
    });
    expect((await received(hook)).length).toBe(7);

    // The held stream was never touched by any of it: released now, it is whole.
    await release(hold);
    const res = await inFlight;
    expect(res.status).toBe(200);
    const sse = await readSse(res);
    expect(sse.text).toBe(expectedText());
    expect(sse.done).toBe(true);
  });
});

describe("alert rules, each provoked for real", () => {
  it("slow first tokens, a refused retry and a deep queue each fire their rule; the drained queue resolves", async () => {
    const hook = `/hooks/rules-${crypto.randomUUID()}`;
    const { tenant, key } = await createTenant(
      simConfig(["a"], {
        limits: { maxConcurrency: 1, maxQueue: 4, maxQueueWaitMs: 120_000 },
        retry: { maxAttempts: 2, budgetRatio: 0, budgetMinRetries: 0 },
        breaker: { consecutiveFailures: 100, minRequests: 100 },
        outbound: { allowPrivateHosts: true },
        alerts: {
          webhooks: [{ id: "ops", url: `${RECEIVER}${hook}` }],
          rules: [
            { id: "slow", kind: "ttft_p99", thresholdMs: 300, minSamples: 1 },
            { id: "budget", kind: "retry_budget_exhausted" },
            { id: "queue", kind: "queue_saturated", depthShare: 0.5 },
          ],
          cooldownSeconds: 0,
        },
      }),
    );
    expect((await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { ttft_ms: 400 } })).status).toBe(200);
    // The retry budget (ratio 0, no free retries) refuses the second attempt.
    await expectError(await chat(key, failing), 502, "retry_budget_exhausted");
    // One request holds the only slot; two wait behind it: half of maxQueue.
    const hold = `rules-${crypto.randomUUID()}`;
    const held = holder(key, hold, { stream: true });
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const queued = [1, 2].map(() => chat(key, { model: "chat", messages: MESSAGES, stream: true }));
    await eventually(async () => (await gateStats(tenant)).queue.depth === 2);

    const firing = async () => (await received(hook)).map((m) => JSON.parse(m.body)).filter((p) => p.type === "alert.firing");
    await eventually(async () => (await firing()).length === 3, ALERT_WAIT_MS);
    const byRule = Object.fromEntries((await firing()).map((p) => [p.data.rule, p.data]));
    expect(byRule.slow.figures).toMatchObject({ ttftSamples: 1, thresholdMs: 300 });
    expect(byRule.slow.figures.ttftP99Ms).toBeGreaterThanOrEqual(300);
    expect(byRule.budget.figures).toEqual({ budgetDenied: 1 });
    expect(byRule.queue.figures).toMatchObject({ depth: 2, maxQueue: 4 });

    await release(hold);
    for (const res of [await held, ...(await Promise.all(queued))]) expect((await readSse(res)).text).toBe(expectedText());
    await eventually(async () => (await received(hook)).some((m) => JSON.parse(m.body).type === "alert.resolved"), ALERT_WAIT_MS);
    const resolved = (await received(hook)).map((m) => JSON.parse(m.body)).filter((p) => p.type === "alert.resolved");
    expect(resolved.map((p) => p.data.rule)).toEqual(["queue"]);
  });
});

describe("alerts admin", () => {
  it("refuses a webhook sluice will not call, and a rule naming an unknown webhook, with a 400 saying which", async () => {
    const { tenant } = await createTenant(simConfig(["a"], { outbound: { allowPrivateHosts: true } }));
    const patch = (alerts: unknown) => admin(tenant, { method: "PATCH", body: JSON.stringify({ alerts }) });
    await expectError(
      await patch({ webhooks: [{ id: "meta", url: "http://169.254.169.254/latest" }] }),
      400,
      "invalid_webhook_url",
      /^alerts\.webhooks\.0\.url \(webhook "meta"\) points at a link-local address/,
    );
    await expectError(
      await patch({
        webhooks: [{ id: "ops", url: `${RECEIVER}/hooks/x` }],
        rules: [{ id: "r", kind: "retry_budget_exhausted", webhooks: ["pager"] }],
      }),
      400,
      "invalid_request",
      /alerts\.rules\.0\.webhooks\.0: unknown webhook "pager"/,
    );
  });

  it("rotates the signing secret, keeping the old one in use for its grace period; a tenant admin may do both", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const issued = await admin(`${tenant}/admin-keys`, { method: "POST" });
    const tenantAdmin = { authorization: `Bearer ${((await issued.json()) as { key: string }).key}` };
    const asTenant = (path: string, init: RequestInit = {}) =>
      SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/alerts/${path}`, { ...init, headers: tenantAdmin });
    const first = (await (await asTenant("signing-secret")).json()) as { secret: string; previous: string | null };
    expect(first.secret).toMatch(/^whsec_/);
    expect(first.previous).toBeNull();
    expect(((await (await asTenant("signing-secret")).json()) as { secret: string }).secret).toBe(first.secret);
    const rotated = (await (await asTenant("signing-secret/rotate", { method: "POST" })).json()) as {
      secret: string;
      previous_expires_at: number;
    };
    expect(rotated.secret).not.toBe(first.secret);
    expect(rotated.previous_expires_at).toBeGreaterThan(Date.now());
    expect(await (await asTenant("signing-secret")).json()).toEqual({ tenant, secret: rotated.secret, previous: first.secret });
    // Another tenant's secret is out of reach, exactly like a tenant that does not exist.
    const other = await createTenant(simConfig(["a"]));
    const res = await SELF.fetch(`https://sluice.test/admin/tenants/${other.tenant}/alerts/signing-secret`, { headers: tenantAdmin });
    await expectError(res, 404, "tenant_not_found");
  });

  it("a deleted tenant leaves no secret and no undelivered alert behind", async () => {
    const hook = `/hooks/deleted-${crypto.randomUUID()}`;
    await answerWith(hook, 503);
    const { tenant, key } = await createTenant(outageConfig(hook, { rules: [{ id: "dead", kind: "dead_letters", perMinute: 1 }] }));
    const secret = await signingSecret(tenant);
    await expectError(await chat(key, failing), 502, "max_attempts");
    await eventually(
      async () => ((await (await admin(`${tenant}/alerts/undelivered`)).json()) as { data: unknown[] }).data.length === 1,
      ALERT_WAIT_MS,
    );
    expect((await admin(tenant, { method: "DELETE" })).status).toBe(200);
    await expectError(await admin(`${tenant}/alerts/signing-secret`), 404, "tenant_not_found");
    const rows = await env.DB.prepare(`SELECT COUNT(*) AS n FROM undelivered_alerts WHERE tenant = ?`).bind(tenant).first<{ n: number }>();
    expect(rows!.n).toBe(0);
    // Created again under the same id, it starts with a new secret.
    await createTenant(simConfig(["a"]), tenant);
    expect(await signingSecret(tenant)).not.toBe(secret);
  });
});
