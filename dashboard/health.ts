// How a tenant and a backend look at a glance: what must stand out on the page.
import type { Stats } from "./api";

export type Health = "ok" | "warn" | "bad";

/**
 * Bad: a breaker open, the queue over 80% full, an alert firing. Warn: a breaker half-open, the
 * queue over half, failures in the last minute, an alert pending.
 */
export function tenantHealth(stats: Stats): Health {
  const maxQueue = stats.limits?.maxQueue ?? 0;
  const queueShare = maxQueue > 0 ? stats.queue.depth / maxQueue : 0;
  const alert = (state: string) => stats.alerts.some((a) => a.state === state);
  if (stats.backends.some((b) => b.breaker === "open") || queueShare > 0.8 || alert("firing")) return "bad";
  const failing = Object.values(stats.recent.lastMinute.backends).some((b) => b.failureRate > 0);
  if (stats.backends.some((b) => b.breaker === "half-open") || queueShare > 0.5 || failing || alert("pending")) return "warn";
  return "ok";
}

export function breakerHealth(state: string): Health {
  return state === "open" ? "bad" : state === "half-open" ? "warn" : "ok";
}

/** Refusals by status: 429 (queue full, rate limited, a budget spent), 503 (every breaker open), 504 (queue wait). */
export function refusals(stats: Stats): { "429": number; "503": number; "504": number } {
  const c = stats.counters;
  return {
    "429": c.rejectedQueueFull + c.rejectedRateLimited + c.rejectedBudget,
    "503": c.rejectedNoBackend,
    "504": c.rejectedQueueTimeout,
  };
}

/** US dollars as the spend panel shows them: cents from a dollar up, six decimals below (a request costs fractions of a cent). */
export function usd(n: number): string {
  return Math.abs(n) >= 1 ? `$${n.toFixed(2)}` : `$${n.toFixed(6)}`;
}

/** The share of spend that no client got anything from ("–" before anything was spent). */
export function wastedShare(total: { usd: number; wasted_usd: number }): string {
  return total.usd > 0 ? `${((100 * total.wasted_usd) / total.usd).toFixed(1)}%` : "–";
}
