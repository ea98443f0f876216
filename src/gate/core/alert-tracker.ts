// The life of each alert across evaluations: pending while its condition holds for less than the
// rule's `forSeconds`, firing once it has, resolved when the condition clears. A "firing" message
// goes out once per change, and never sooner than the cooldown after the alert's previous one: a
// condition that flaps is told once, and again only if it still holds when the cooldown ends.
// Every "firing" is followed by one "resolved" (also when the rule or its backend leaves the config;
// at once, in the same evaluation, for a condition that held and cleared between two evaluations).
// Stored by the gate (toJSON), so a restart neither repeats a message nor loses a resolution.
import type { AlertKind } from "../../config/alerts-schema";
import type { FigureValues, Observation } from "./alert-conditions";

export type AlertState = "firing" | "resolved";

/** A message to send: an alert changed state. */
export interface AlertTransition {
  key: string;
  rule: string;
  kind: AlertKind;
  subject?: string;
  state: AlertState;
  /** When the condition began to hold (for "resolved": when it had begun). */
  since: number;
  at: number;
  figures: FigureValues;
  summary: string;
}

interface Tracked {
  rule: string;
  kind: AlertKind;
  subject?: string;
  /** While the condition holds: since when. */
  since?: number;
  /** The condition began then, for the firing alert's "resolved". */
  firingSince?: number;
  firing: boolean;
  /** The last "firing" message. */
  firedAt?: number;
  forMs: number;
}

export interface SavedAlerts {
  evaluatedAt: number;
  alerts: Array<[string, Tracked]>;
}

export interface ActiveAlert {
  key: string;
  rule: string;
  kind: AlertKind;
  subject?: string;
  state: "pending" | "firing";
  since: number;
  /** In a sharded tenant's merged stats: the gate that holds the alert. */
  shard?: number;
}

export class AlertTracker {
  private readonly alerts = new Map<string, Tracked>();
  /** The last evaluation (0: none yet). */
  evaluatedAt = 0;

  static restore(saved: SavedAlerts): AlertTracker {
    const tracker = new AlertTracker();
    tracker.evaluatedAt = saved.evaluatedAt;
    for (const [key, tracked] of saved.alerts) tracker.alerts.set(key, tracked);
    return tracker;
  }

  /** Alerts pending or firing, or held back by their cooldown. */
  get size(): number {
    return this.alerts.size;
  }

  /** Compares `observations` with what was known and returns the messages to send, in order. */
  evaluate(observations: readonly Observation[], cooldownMs: number, now: number): AlertTransition[] {
    const out: AlertTransition[] = [];
    const seen = new Set<string>();
    for (const o of observations) {
      seen.add(o.key);
      let t = this.alerts.get(o.key);
      const forMs = o.rule.forSeconds * 1000;
      if (o.active) {
        if (!t) this.alerts.set(o.key, (t = { rule: o.rule.id, kind: o.rule.kind, subject: o.subject, firing: false, forMs }));
        t.forMs = forMs;
        t.since ??= now;
        const cooled = t.firedAt === undefined || now - t.firedAt >= cooldownMs;
        if (!t.firing && now - t.since >= forMs && cooled) {
          Object.assign(t, { firing: true, firedAt: now, firingSince: t.since });
          out.push(transition(o.key, t, "firing", t.since, now, o.figures, o.summary));
        }
        // Over already (it held between evaluations): the resolution follows its firing, in order.
        if (o.cleared) {
          if (t.firing) out.push(transition(o.key, t, "resolved", t.firingSince ?? now, now, o.cleared.figures, o.cleared.summary));
          Object.assign(t, { firing: false, since: undefined });
        }
      } else if (t) {
        t.since = undefined;
        if (t.firing) {
          t.firing = false;
          out.push(transition(o.key, t, "resolved", t.firingSince ?? now, now, o.figures, o.summary));
        }
      }
    }
    for (const [key, t] of this.alerts) {
      if (seen.has(key)) continue;
      // The rule, or the backend it watched, left the config: what was firing is resolved.
      if (t.firing)
        out.push(transition(key, t, "resolved", t.firingSince ?? now, now, {}, "The rule no longer applies: the config changed."));
      this.alerts.delete(key);
    }
    for (const [key, t] of this.alerts)
      if (!t.firing && t.since === undefined && (t.firedAt === undefined || now - t.firedAt >= cooldownMs)) this.alerts.delete(key);
    this.evaluatedAt = now;
    return out;
  }

  /** The earliest time a pending alert may fire (its `forSeconds` and cooldown passed); undefined without one. */
  nextDue(cooldownMs: number): number | undefined {
    let next: number | undefined;
    for (const t of this.alerts.values()) {
      if (t.firing || t.since === undefined) continue;
      const due = Math.max(t.since + t.forMs, (t.firedAt ?? Number.NEGATIVE_INFINITY) + cooldownMs);
      next = next === undefined ? due : Math.min(next, due);
    }
    return next;
  }

  /** Alerts whose condition holds, firing or not yet, for the stats. */
  active(): ActiveAlert[] {
    return [...this.alerts]
      .filter(([, t]) => t.firing || t.since !== undefined)
      .map(([key, t]) => ({
        key,
        rule: t.rule,
        kind: t.kind,
        ...(t.subject === undefined ? {} : { subject: t.subject }),
        state: t.firing ? "firing" : "pending",
        since: (t.firing ? t.firingSince : t.since) ?? this.evaluatedAt,
      }));
  }

  toJSON(): SavedAlerts {
    return { evaluatedAt: this.evaluatedAt, alerts: [...this.alerts].map(([k, t]) => [k, { ...t }]) };
  }
}

function transition(
  key: string,
  t: Tracked,
  state: AlertState,
  since: number,
  at: number,
  figures: FigureValues,
  summary: string,
): AlertTransition {
  return {
    key,
    rule: t.rule,
    kind: t.kind,
    ...(t.subject === undefined ? {} : { subject: t.subject }),
    state,
    since,
    at,
    figures,
    summary,
  };
}
