// What each alert rule sees in the gate's figures right now: for every rule (and, for breaker
// rules, every backend it watches) whether its condition holds, the figures that decide it, and a
// sentence for the person paged. Pure: the figures are read by the core and passed in.
import type { AlertRule } from "../../config/alerts-schema";
import type { BreakerState } from "./breaker";

/** The gate's figures an evaluation looks at. */
export interface AlertFigures {
  queue: { depth: number; maxQueue: number; oldestWaitMs: number };
  /** The last minute (see RecentActivity). */
  lastMinute: { budgetDenied: number; deadLetters: number; ttftP99Ms?: number; ttftSamples: number };
  /** The tenant's budgets and its keys' budgets charged this period, in each one's unit. */
  budgets: ReadonlyArray<{ id: string; name: string; unit: "usd" | "tokens"; spent: number; limit: number; threshold: number }>;
  backends: ReadonlyArray<{
    id: string;
    breaker: BreakerState;
    /** When the breaker last opened (0: never). */
    openedAt: number;
    failures: number;
    successes: number;
  }>;
}

export type FigureValues = Record<string, number | string>;

/** One alert: a rule, and the backend it is about for breaker rules. */
export interface Observation {
  /** `rule` or `rule/backend`: the alert's identity, stable across evaluations. */
  key: string;
  rule: AlertRule;
  /** The backend a breaker alert is about. */
  subject?: string;
  /**
   * The condition held since the last evaluation but no longer holds now (a breaker that opened and
   * closed again in between): what it is now, for the "resolved" that follows the "firing" at once.
   */
  cleared?: { figures: FigureValues; summary: string };
  active: boolean;
  figures: FigureValues;
  /** What is wrong (or that it no longer is), in a sentence. */
  summary: string;
}

/**
 * Every alert the rules define, and whether each holds. `since`: the previous evaluation's time;
 * a breaker that opened after it counts as open even if it closed again since, so an outage
 * shorter than the evaluation interval is still told.
 */
export function observe(rules: readonly AlertRule[], figures: AlertFigures, since: number): Observation[] {
  return rules.flatMap((rule) => observeRule(rule, figures, since));
}

function observeRule(rule: AlertRule, f: AlertFigures, since: number): Observation[] {
  const one = (active: boolean, figures: FigureValues, summary: string): Observation[] => [
    { key: rule.id, rule, active, figures, summary },
  ];
  switch (rule.kind) {
    case "breaker_open": {
      const watched = rule.backends ? f.backends.filter((b) => rule.backends!.includes(b.id)) : f.backends;
      return watched.map((b) => {
        const blip = b.breaker === "closed" && b.openedAt > since;
        const active = b.breaker !== "closed" || blip;
        const counts = { failures: b.failures, successes: b.successes };
        const closed = { figures: { breaker: "closed", ...counts }, summary: `The circuit breaker of backend ${b.id} is closed.` };
        const held = blip ? "open" : b.breaker;
        const summary = `The circuit breaker of backend ${b.id} ${blip ? "opened" : `is ${held}`}: ${b.failures} of ${b.failures + b.successes} recent attempts failed.`;
        return {
          key: `${rule.id}/${b.id}`,
          rule,
          subject: b.id,
          active,
          ...(active ? { figures: { breaker: held, ...counts }, summary } : closed),
          ...(blip ? { cleared: closed } : {}),
        };
      });
    }
    case "queue_saturated": {
      const { depth, maxQueue, oldestWaitMs } = f.queue;
      const deep = rule.depthShare !== undefined && maxQueue > 0 && depth >= rule.depthShare * maxQueue;
      const slow = rule.waitMs !== undefined && oldestWaitMs >= rule.waitMs;
      const summary =
        deep || slow
          ? `The queue holds ${depth} of ${maxQueue} requests; the oldest has waited ${oldestWaitMs} ms.`
          : `The queue holds ${depth} of ${maxQueue} requests.`;
      return one(deep || slow, { depth, maxQueue, oldestWaitMs }, summary);
    }
    case "retry_budget_exhausted": {
      const denied = f.lastMinute.budgetDenied;
      return one(
        denied > 0,
        { budgetDenied: denied },
        denied > 0
          ? `The retry budget refused ${denied} retries in the last minute.`
          : "The retry budget refused no retry in the last minute.",
      );
    }
    case "dead_letters": {
      const n = f.lastMinute.deadLetters;
      return one(
        n >= rule.perMinute,
        { deadLetters: n, perMinute: rule.perMinute },
        `${n} requests ended as dead letters in the last minute.`,
      );
    }
    case "budget": {
      const watched = rule.budgets ? f.budgets.filter((b) => rule.budgets!.includes(b.name)) : f.budgets;
      return watched.map((b) => {
        const amount = (n: number) => (b.unit === "usd" ? `$${round(n)}` : `${Math.round(n)} tokens`);
        const whose = b.id.startsWith("key/") ? `API key ${b.id.split("/")[1]}` : "the tenant";
        return {
          key: `${rule.id}/${b.id}`,
          rule,
          subject: b.id,
          active: b.spent >= b.threshold,
          figures: { spent: round(b.spent), limit: b.limit, threshold: round(b.threshold), unit: b.unit },
          summary: `Budget "${b.name}" of ${whose} has spent ${amount(b.spent)} of ${amount(b.limit)} (alert at ${amount(b.threshold)}).`,
        };
      });
    }
    case "ttft_p99": {
      const { ttftP99Ms: p99, ttftSamples: samples } = f.lastMinute;
      const active = p99 !== undefined && samples >= rule.minSamples && p99 >= rule.thresholdMs;
      const figures: FigureValues = {
        ttftSamples: samples,
        thresholdMs: rule.thresholdMs,
        ...(p99 === undefined ? {} : { ttftP99Ms: p99 }),
      };
      return one(active, figures, `TTFT p99 over the last minute is ${p99 ?? "-"} ms over ${samples} first tokens.`);
    }
  }
}

/** Dollars to the cent's hundredth, tokens whole: what a page needs. */
const round = (n: number): number => Math.round(n * 10_000) / 10_000;
