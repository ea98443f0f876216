// The gate's side of alerting: reads its figures, runs the tenant's rules through the tracker,
// and turns what changed into one message per webhook for the alert queue (observe/alerts
// delivers them, off the request path). Evaluations run from the gate's alarm: every
// ALERT_EVALUATE_MS while requests come and go, every ALERT_IDLE_EVALUATE_MS while an alert is
// pending or firing with nothing happening, and not at all when there is nothing to look at.
import type { AlertKind } from "../../config/alerts-schema";
import type { AlertFigures } from "./alert-conditions";
import { observe } from "./alert-conditions";
import { type ActiveAlert, type AlertTransition, AlertTracker, type SavedAlerts } from "./alert-tracker";
import type { GateMetrics } from "./metrics";
import type { BoundedPriorityQueue } from "./queue";
import type { TenantPolicies } from "./tenant-policies";
import type { SpendDesk } from "./spend-desk";

export const ALERT_EVALUATE_MS = 5_000;
export const ALERT_IDLE_EVALUATE_MS = 60_000;

/** What a webhook receives (docs/operations.md, "Alerts"), less the dashboard link the consumer adds. */
export interface AlertEvent {
  /** Unique per message: the receiver's key for dropping a redelivered one (`webhook-id`). */
  id: string;
  type: "alert.firing" | "alert.resolved";
  tenant: string;
  /** The gate that saw it (a sharded tenant's gates each watch their share). */
  shard: number;
  rule: string;
  kind: AlertKind;
  /** The backend, for breaker alerts. */
  backend?: string;
  /** The budget ("tenant/<name>" or "key/<key id>/<name>"), for budget alerts. */
  budget?: string;
  state: AlertTransition["state"];
  /** ISO 8601: when the condition began to hold. */
  since: string;
  /** ISO 8601: when the gate saw the change. */
  at: string;
  figures: AlertTransition["figures"];
  summary: string;
}

/** One delivery: an event for one webhook. */
export interface AlertMessage {
  webhook: { id: string; url: string };
  event: AlertEvent;
}

export interface AlertSources {
  policies: TenantPolicies;
  metrics: GateMetrics;
  queue: BoundedPriorityQueue<unknown>;
  spend: SpendDesk;
}

export class GateAlerts {
  private tracker: AlertTracker;
  /** The figures changed since the last evaluation. */
  private busy = false;

  constructor(
    private readonly sources: AlertSources,
    /** The figures changed: evaluate within ALERT_EVALUATE_MS, or at once (`now`); the shell sets its alarm. */
    private readonly wanted: (now?: boolean) => void,
    saved?: SavedAlerts,
  ) {
    this.tracker = saved ? AlertTracker.restore(saved) : new AlertTracker();
  }

  /**
   * Something happened (a counter moved): an evaluation is wanted soon, if the tenant has rules.
   * Without rules nothing is marked, so rules added later are evaluated at the next activity.
   */
  noteActivity(): void {
    if (this.busy || (this.sources.policies.config?.alerts.rules.length ?? 0) === 0) return;
    this.busy = true;
    this.wanted();
  }

  /** A breaker opened: with a breaker rule, evaluated at once rather than at the next tick. */
  breakerOpened(): void {
    if (!this.sources.policies.config?.alerts.rules.some((r) => r.kind === "breaker_open")) return;
    this.busy = true;
    this.wanted(true);
  }

  /**
   * Evaluates the rules at `now`: the messages to send (one per change and webhook), the state to
   * store, and when to evaluate next (undefined: not until something happens).
   */
  evaluate(
    tenant: string,
    shard: number,
    newId: () => string,
    now: number,
  ): { messages: AlertMessage[]; saved: SavedAlerts; next?: number } {
    const alerts = this.sources.policies.config?.alerts;
    const cooldownMs = (alerts?.cooldownSeconds ?? 0) * 1000;
    const observations = alerts ? observe(alerts.rules, this.figures(now), this.tracker.evaluatedAt) : [];
    const transitions = this.tracker.evaluate(observations, cooldownMs, now);
    const messages = transitions.flatMap((t) => {
      const rule = alerts?.rules.find((r) => r.id === t.rule);
      // A rule that left the config is resolved to every webhook still configured.
      const targets = (alerts?.webhooks ?? []).filter((w) => !rule?.webhooks || rule.webhooks.includes(w.id));
      const event = toEvent(t, tenant, shard, newId());
      return targets.map((w) => ({ webhook: { id: w.id, url: w.url }, event }));
    });
    const wasBusy = this.busy;
    this.busy = false;
    let next: number | undefined;
    if (this.tracker.size > 0) next = now + (wasBusy ? ALERT_EVALUATE_MS : ALERT_IDLE_EVALUATE_MS);
    else if (wasBusy && observations.length > 0) next = now + ALERT_EVALUATE_MS;
    const due = this.tracker.nextDue(cooldownMs);
    if (due !== undefined) next = Math.min(next ?? due, Math.max(due, now + 1));
    return { messages, saved: this.tracker.toJSON(), next };
  }

  /** Alerts whose condition holds now (pending or firing). */
  active(): ActiveAlert[] {
    return this.tracker.active();
  }

  private figures(now: number): AlertFigures {
    const { policies, metrics, queue, spend } = this.sources;
    const oldest = queue.oldestEnqueuedAt();
    const minute = metrics.recent.lastMinute(now);
    return {
      queue: { depth: queue.size, maxQueue: policies.config?.limits.maxQueue ?? 0, oldestWaitMs: oldest === undefined ? 0 : now - oldest },
      lastMinute: {
        budgetDenied: minute.budgetDenied,
        deadLetters: minute.deadLetters,
        ttftSamples: minute.ttftMs.count,
        ...(minute.ttftMs.p99 === undefined ? {} : { ttftP99Ms: minute.ttftMs.p99 }),
      },
      budgets: spend.alertable(now).map((s) => ({
        id: s.id,
        name: s.rule.name,
        unit: s.rule.unit,
        spent: s.spent,
        limit: s.rule.limit,
        threshold: (s.rule.softAt ?? 1) * s.rule.limit,
      })),
      backends: policies.backendList().map((b) => {
        const breaker = policies.breaker(b.id);
        const counts = breaker?.counts(now) ?? { successes: 0, failures: 0 };
        return { id: b.id, breaker: breaker?.stateAt(now) ?? "closed", openedAt: breaker?.lastOpenedAt ?? 0, ...counts };
      }),
    };
  }
}

function toEvent(t: AlertTransition, tenant: string, shard: number, id: string): AlertEvent {
  return {
    id,
    type: t.state === "firing" ? "alert.firing" : "alert.resolved",
    tenant,
    shard,
    rule: t.rule,
    kind: t.kind,
    ...(t.subject === undefined ? {} : t.kind === "budget" ? { budget: t.subject } : { backend: t.subject }),
    state: t.state,
    since: new Date(t.since).toISOString(),
    at: new Date(t.at).toISOString(),
    figures: t.figures,
    summary: t.summary,
  };
}
