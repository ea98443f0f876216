// What happened in the last minute and the last five, for the stats JSON and the dashboard: the
// lifetime histograms and counters say little about now. Time is cut into SLOT_MS slots, the last
// SLOTS kept in a ring (bounded memory: two small histograms and a few counts per slot and
// backend); a window is the slots it covers, the current one included. Not stored: after a
// restart the windows fill again.
import { LatencyHistogram } from "./histogram";

export const SLOT_MS = 15_000;
/** Five minutes of slots. */
export const SLOTS = 20;

interface Slot {
  /** floor(time / SLOT_MS) of the slot's start. */
  index: number;
  queueMs: LatencyHistogram;
  ttftMs: LatencyHistogram;
  /** Requests that ended, and the attempts they made. */
  requests: number;
  attempts: number;
  budgetDenied: number;
  deadLetters: number;
  backends: Map<string, { attempts: number; failures: number }>;
}

export interface WindowSummary {
  /** Requests that ended in the window. */
  requests: number;
  queueMs: { p50?: number; p99?: number };
  /** `count`: first tokens in the window. */
  ttftMs: { p50?: number; p99?: number; count: number };
  /** Upstream attempts per ended request (0 without requests). */
  attemptsPerRequest: number;
  /** Retries the retry budget refused. */
  budgetDenied: number;
  /** Requests that ended as dead letters (observe/dead-letters.ts). */
  deadLetters: number;
  /** Per backend: attempts that ended, how many failed, and their share. */
  backends: Record<string, { attempts: number; failures: number; failureRate: number }>;
}

export interface RecentSummary {
  lastMinute: WindowSummary;
  last5Minutes: WindowSummary;
}

export class RecentActivity {
  private readonly ring: Array<Slot | undefined> = new Array(SLOTS);

  queued(ms: number, now: number): void {
    this.slot(now).queueMs.record(ms);
  }

  /** A request ended after `attempts` upstream attempts. */
  ended(attempts: number, now: number): void {
    const slot = this.slot(now);
    slot.requests++;
    slot.attempts += attempts;
  }

  attemptEnded(backendId: string, failed: boolean, ttftMs: number | undefined, now: number): void {
    const slot = this.slot(now);
    if (ttftMs !== undefined) slot.ttftMs.record(ttftMs);
    let b = slot.backends.get(backendId);
    if (!b) slot.backends.set(backendId, (b = { attempts: 0, failures: 0 }));
    b.attempts++;
    if (failed) b.failures++;
  }

  budgetDenied(now: number): void {
    this.slot(now).budgetDenied++;
  }

  deadLettered(now: number): void {
    this.slot(now).deadLetters++;
  }

  /** The last minute alone (what alert rules look at). */
  lastMinute(now: number): WindowSummary {
    return this.window(now, 60_000 / SLOT_MS);
  }

  summary(now: number): RecentSummary {
    return { lastMinute: this.lastMinute(now), last5Minutes: this.window(now, SLOTS) };
  }

  private window(now: number, slots: number): WindowSummary {
    const current = Math.floor(now / SLOT_MS);
    const queueMs = new LatencyHistogram();
    const ttftMs = new LatencyHistogram();
    let requests = 0;
    let attempts = 0;
    let budgetDenied = 0;
    let deadLetters = 0;
    const backends = new Map<string, { attempts: number; failures: number }>();
    for (const slot of this.ring) {
      if (!slot || slot.index <= current - slots || slot.index > current) continue;
      queueMs.merge(slot.queueMs);
      ttftMs.merge(slot.ttftMs);
      requests += slot.requests;
      attempts += slot.attempts;
      budgetDenied += slot.budgetDenied;
      deadLetters += slot.deadLetters;
      for (const [id, b] of slot.backends) {
        const sum = backends.get(id) ?? { attempts: 0, failures: 0 };
        backends.set(id, { attempts: sum.attempts + b.attempts, failures: sum.failures + b.failures });
      }
    }
    return {
      requests,
      queueMs: { p50: queueMs.quantile(0.5), p99: queueMs.quantile(0.99) },
      ttftMs: { p50: ttftMs.quantile(0.5), p99: ttftMs.quantile(0.99), count: ttftMs.count },
      attemptsPerRequest: requests > 0 ? Math.round((attempts / requests) * 1000) / 1000 : 0,
      budgetDenied,
      deadLetters,
      backends: Object.fromEntries(
        [...backends].map(([id, b]) => [
          id,
          { ...b, failureRate: b.attempts > 0 ? Math.round((b.failures / b.attempts) * 1000) / 1000 : 0 },
        ]),
      ),
    };
  }

  private slot(now: number): Slot {
    const index = Math.floor(now / SLOT_MS);
    const at = ((index % SLOTS) + SLOTS) % SLOTS;
    let slot = this.ring[at];
    // A slot left from SLOTS slots ago (or more) starts over.
    if (!slot || slot.index !== index) {
      slot = {
        index,
        queueMs: new LatencyHistogram(),
        ttftMs: new LatencyHistogram(),
        requests: 0,
        attempts: 0,
        budgetDenied: 0,
        deadLetters: 0,
        backends: new Map(),
      };
      this.ring[at] = slot;
    }
    return slot;
  }
}

/**
 * Several gates' windows as one (a sharded tenant): counts added up, attempts per request over all
 * of them, percentiles the worst gate's (percentiles do not add up; the worst is what to look at).
 */
export function mergeRecent(parts: RecentSummary[]): RecentSummary {
  return { lastMinute: mergeWindows(parts.map((p) => p.lastMinute)), last5Minutes: mergeWindows(parts.map((p) => p.last5Minutes)) };
}

function mergeWindows(windows: WindowSummary[]): WindowSummary {
  const worst = (pick: (w: WindowSummary) => number | undefined) => {
    const values = windows.map(pick).filter((v) => v !== undefined);
    return values.length > 0 ? Math.max(...values) : undefined;
  };
  const requests = windows.reduce((n, w) => n + w.requests, 0);
  const attempts = windows.reduce((n, w) => n + w.attemptsPerRequest * w.requests, 0);
  const backends: WindowSummary["backends"] = {};
  for (const w of windows)
    for (const [id, b] of Object.entries(w.backends)) {
      const sum = Object.hasOwn(backends, id) ? backends[id]! : { attempts: 0, failures: 0, failureRate: 0 };
      const merged = { attempts: sum.attempts + b.attempts, failures: sum.failures + b.failures };
      backends[id] = { ...merged, failureRate: merged.attempts > 0 ? Math.round((merged.failures / merged.attempts) * 1000) / 1000 : 0 };
    }
  return {
    requests,
    queueMs: { p50: worst((w) => w.queueMs.p50), p99: worst((w) => w.queueMs.p99) },
    ttftMs: { p50: worst((w) => w.ttftMs.p50), p99: worst((w) => w.ttftMs.p99), count: windows.reduce((n, w) => n + w.ttftMs.count, 0) },
    attemptsPerRequest: requests > 0 ? Math.round((attempts / requests) * 1000) / 1000 : 0,
    budgetDenied: windows.reduce((n, w) => n + w.budgetDenied, 0),
    deadLetters: windows.reduce((n, w) => n + w.deadLetters, 0),
    backends,
  };
}
