// The chaos scenario's alert check: a webhook receiver (sim/webhook-receiver.ts) gets the chaos
// tenant's breaker alerts; each message's signature is verified with the tenant's secret (Standard
// Webhooks), and the times are set against the outage: "firing" for a downed backend after the
// outage began, "resolved" after the recovery.
import { Webhook } from "standardwebhooks";
import { WebhookReceiver } from "../sim/webhook-receiver";
import { ADMIN_TOKEN } from "./stack";

const PATH = "/hooks/chaos";

export interface AlertTimeline {
  /** ms after the outage began that each downed backend's "firing" arrived. */
  firingAfterOutageMs: Record<string, number>;
  /** ms after the recovery began that each downed backend's "resolved" arrived. */
  resolvedAfterRecoveryMs: Record<string, number>;
  /** Every message, in order: type, backend, ms from the outage's start. */
  messages: Array<{ type: string; backend?: string; atMs: number }>;
  badSignatures: number;
}

export class AlertWatch {
  private constructor(
    private readonly receiver: WebhookReceiver,
    readonly url: string,
  ) {}

  static async start(): Promise<AlertWatch> {
    const receiver = new WebhookReceiver();
    const port = await receiver.listen();
    return new AlertWatch(receiver, `http://127.0.0.1:${port}${PATH}`);
  }

  /** The tenant config's `alerts`: breaker alerts for every backend, to this receiver. */
  config(): Record<string, unknown> {
    return { webhooks: [{ id: "bench", url: this.url }], rules: [{ id: "breaker", kind: "breaker_open" }], cooldownSeconds: 0 };
  }

  /**
   * Waits (up to `waitMs`, poking the router meanwhile) until each of `down` has its "resolved", then sets the messages against
   * the outage (`outageAt`) and the recovery (`recoveryAt`), Unix ms.
   */
  private async timeline(
    secret: string,
    down: readonly string[],
    outageAt: number,
    recoveryAt: number,
    poke: () => Promise<unknown>,
    waitMs = 180_000,
  ): Promise<AlertTimeline> {
    const until = Date.now() + waitMs;
    const resolvedAll = () => down.every((b) => this.parsed().some((m) => m.type === "alert.resolved" && m.data.backend === b));
    // A breaker closes on a probe that succeeds: light traffic goes on until every alert resolved.
    while (!resolvedAll() && Date.now() < until) {
      await poke().catch(() => {});
      await new Promise((r) => setTimeout(r, 200));
    }
    const webhook = new Webhook(secret);
    let badSignatures = 0;
    for (const m of this.receiver.receivedAt(PATH)) {
      try {
        webhook.verify(m.body, m.headers);
      } catch {
        badSignatures++;
      }
    }
    const timeline: AlertTimeline = { firingAfterOutageMs: {}, resolvedAfterRecoveryMs: {}, messages: [], badSignatures };
    for (const m of this.parsed()) {
      const backend: string | undefined = m.data.backend;
      timeline.messages.push({ type: m.type, backend, atMs: m.receivedAt - outageAt });
      if (backend === undefined || !down.includes(backend)) continue;
      if (m.type === "alert.firing" && m.receivedAt >= outageAt) timeline.firingAfterOutageMs[backend] ??= m.receivedAt - outageAt;
      if (m.type === "alert.resolved" && m.receivedAt >= recoveryAt)
        timeline.resolvedAfterRecoveryMs[backend] ??= m.receivedAt - recoveryAt;
    }
    return timeline;
  }

  /**
   * The tenant's breaker alerts of the outage, each signature checked with its secret: a downed
   * backend fired after the outage began and resolved after the recovery, or a violation says not.
   */
  async check(
    routerUrl: string,
    tenant: string,
    down: string[],
    at: { outageAt: number; recoveryAt: number },
    violations: string[],
    /** One request of the tenant's, sent while waiting: without traffic no probe closes a breaker. */
    poke: () => Promise<unknown>,
  ) {
    const res = await fetch(`${routerUrl}/admin/tenants/${tenant}/alerts/signing-secret`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const { secret } = (await res.json()) as { secret: string };
    const timeline = await this.timeline(secret, down, at.outageAt, at.recoveryAt, poke);
    const fired = Object.keys(timeline.firingAfterOutageMs);
    if (fired.length === 0) violations.push(`${tenant}/sluice: no "firing" breaker alert for ${down.join(" or ")} after the outage began`);
    for (const backend of fired)
      if (timeline.resolvedAfterRecoveryMs[backend] === undefined)
        violations.push(`${tenant}/sluice: the breaker alert of ${backend} was not resolved after the recovery`);
    if (timeline.badSignatures > 0)
      violations.push(`${tenant}/sluice: ${timeline.badSignatures} alert messages failed signature verification`);
    return timeline;
  }

  async close(): Promise<void> {
    await this.receiver.close();
  }

  private parsed(): Array<{ type: string; data: { backend?: string }; receivedAt: number }> {
    return this.receiver.receivedAt(PATH).map((m) => ({ ...JSON.parse(m.body), receivedAt: m.receivedAt }));
  }
}
