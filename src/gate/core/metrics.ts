// The gate's counters and latency histograms, in a form that survives a restart: a Durable Object
// is restarted by deploys and evicted when idle, and stats that start over each time would say
// little about a tenant with quiet spells. The gate stores `toJSON()` a moment after a change
// (see METRICS_SAVE_MS) and starts from `GateMetrics.restore`.
import { LatencyHistogram, type SavedHistogram } from "./histogram";
import { RecentActivity } from "./recent";
import type { AttemptReport, WasteCause } from "./protocol";
import type { SpendKind } from "./spend-ledger";

export const WASTE_CAUSES: readonly WasteCause[] = ["regenerated", "restarted"];

/** How long after a change the gate stores its metrics: a restart forgets at most this much. */
export const METRICS_SAVE_MS = 1_000;

/** Model aliases whose spend is counted apart (a config holds at most 256 at once). */
export const MAX_SPEND_ALIASES = 512;

function newCounters() {
  return {
    admitted: 0,
    queued: 0,
    rejectedQueueFull: 0,
    /** Of rejectedQueueFull: answered by Workers from a shed hint, without asking the gate. */
    shedByWorker: 0,
    rejectedQueueTimeout: 0,
    rejectedNoBackend: 0,
    rejectedRateLimited: 0,
    rejectedBudget: 0,
    completed: 0,
    partial: 0,
    failed: 0,
    cancelled: 0,
    abandoned: 0,
    /** Leases the gate did not know (it restarted before writing them) and took back from their live request. */
    adopted: 0,
    attempts: 0,
    retries: 0,
    continuations: 0,
    budgetDenied: 0,
    /** Timeouts of a backend that answers, but late (adaptiveConcurrency): its limit cut, its breaker and the budget left alone. */
    slowTimeouts: 0,
    servedStale: 0,
    abandonedInQueue: 0,
    /** Requests that waited behind a queued request with the same key (one generation for both). */
    queuedTwins: 0,
    /** Hedged first tokens (core/hedging.ts). */
    hedgesStarted: 0,
    hedgesWon: 0,
    hedgesDenied: 0,
    hedgeWastedPromptTokens: 0,
    promptTokens: 0,
    completionTokens: 0,
    wastedTokens: 0,
  };
}

export type Counters = ReturnType<typeof newCounters>;

/** The client APIs requests come in by (the request log line's `surface`). */
export const SURFACES = ["chat", "messages", "responses", "embeddings"] as const;
export type SurfaceName = (typeof SURFACES)[number];
/** Per surface: requests given a slot, and how they ended (as the tenant's counters of the same names). */
export const SURFACE_COUNTERS = ["admitted", "completed", "partial", "failed", "cancelled", "abandoned", "servedStale"] as const;
export type SurfaceCounter = (typeof SURFACE_COUNTERS)[number];
export type SurfaceCounters = Record<SurfaceCounter, number>;

const newSurfaces = () =>
  Object.fromEntries(SURFACES.map((s) => [s, Object.fromEntries(SURFACE_COUNTERS.map((c) => [c, 0]))])) as Record<
    SurfaceName,
    SurfaceCounters
  >;
export type CounterName = keyof Counters;

/** What each counter counts, for metric exports (`GET /admin/tenants/{tenant}/metrics`). */
export const COUNTER_HELP: Record<CounterName, string> = {
  admitted: "Requests given a slot.",
  queued: "Requests that waited in the queue.",
  rejectedQueueFull: "Requests answered 429 queue_full (displaced ones and Worker sheds included).",
  shedByWorker: "Of the queue_full answers: given by a Worker from a shed hint, without asking the gate.",
  rejectedQueueTimeout: "Requests answered 504 queue_timeout.",
  rejectedNoBackend: "Requests answered 503 no_backend_available (every circuit open).",
  rejectedRateLimited: "Requests answered 429 rate_limited (limits.requestsPerMinute or tokensPerMinute, or their API key's).",
  rejectedBudget: "Requests answered 429 budget_exceeded: a budget of the tenant or of its API key was spent.",
  completed: "Requests that ended complete.",
  partial: "Requests that ended with the partial-completion error event.",
  failed: "Requests that failed before their first token.",
  cancelled: "Requests whose client went away, or that were cancelled (a background generation).",
  abandoned: "Requests whose Worker stopped renewing the lease (reclaimed by the alarm).",
  adopted: "Live requests whose lease the gate did not know (a restart before it was written) and counted again.",
  attempts: "Upstream attempts.",
  retries: "Attempts after the first of a request.",
  continuations: "Attempts that carried on a stream cut mid-way.",
  budgetDenied: "Retries the retry budget refused.",
  slowTimeouts:
    "Timeouts of a backend with adaptiveConcurrency that answers, but late: its learned limit was cut, and neither its breaker nor the retry budget counted them.",
  servedStale: "Requests answered from a stored answer after every backend failed (stale-if-error).",
  abandonedInQueue: "Queued requests dropped because nobody polled their ticket.",
  queuedTwins: "Requests that waited behind a queued request with the same key.",
  hedgesStarted: "Hedges started: a second attempt on another backend of the model, for an attempt whose first token was late.",
  hedgesWon: "Hedges that went on in place of the attempt they hedged (its first token came first, or the hedged attempt failed).",
  hedgesDenied: "Hedges the hedge budget refused (hedging.budgetRatio).",
  hedgeWastedPromptTokens: "Prompt tokens (estimated) sent to attempts that lost a hedge race: prefill spent on an answer nobody got.",
  promptTokens: "Prompt tokens of the requests given a slot (estimated: characters / 4).",
  completionTokens: "Completion tokens relayed from backends, every attempt's included.",
  wastedTokens:
    "Completion tokens backends generated that no client got: a regenerated answer's repeated tool calls, a non-streaming answer started over.",
};

/** Per backend: attempts = successes + failures + cancelled + abandoned + the attempts in flight. */
export interface BackendCounters {
  attempts: number;
  successes: number;
  failures: number;
  /** Attempts stopped because the client went away (or the gate ended the request). */
  cancelled: number;
  /** Attempts that ended without a report: reclaimed from a silent Worker, or settled after an exception. */
  abandoned: number;
  /** Of the failures: the backend refused sluice's credentials (401/403): its apiKey is wrong or revoked. */
  authFailures: number;
  /** Attempts on it whose first token was late enough to be hedged, and hedges it took (core/hedging.ts). */
  hedged: number;
  hedges: number;
  /** Completion tokens relayed from the backend. */
  tokens: number;
  /** Tokens the backend generated that no client got, by cause. */
  wasted: Record<WasteCause, number>;
  ttft: LatencyHistogram;
}

export interface SavedMetrics {
  counters: Partial<Counters>;
  surfaces?: Partial<Record<SurfaceName, Partial<SurfaceCounters>>>;
  /** US dollars spent per model alias, served and wasted (spend-ledger.ts). */
  spend?: Record<string, Record<SpendKind, number>>;
  queueMs: SavedHistogram;
  totalMs: SavedHistogram;
  backends: Record<
    string,
    {
      attempts: number;
      successes: number;
      failures: number;
      cancelled?: number;
      abandoned?: number;
      authFailures?: number;
      hedged?: number;
      hedges?: number;
      tokens?: number;
      wasted?: Partial<Record<WasteCause, number>>;
      ttft: SavedHistogram;
    }
  >;
}

export class GateMetrics {
  readonly counters = newCounters();
  readonly surfaces = newSurfaces();
  /** Time from admission to a slot. */
  readonly queueMs = new LatencyHistogram();
  /** Time from a slot to the request's end. */
  readonly totalMs = new LatencyHistogram();
  private readonly backends = new Map<string, BackendCounters>();
  /** US dollars per model alias and kind, since the gate began (Prometheus' sluice_spend_usd_total). */
  readonly spend = new Map<string, Record<SpendKind, number>>();
  /** The last minute and five: not stored (see RecentActivity). */
  readonly recent = new RecentActivity();

  /** `changed` runs after every update (the gate schedules a save). */
  constructor(private readonly changed: () => void) {}

  static restore(saved: SavedMetrics, changed: () => void): GateMetrics {
    const m = new GateMetrics(changed);
    for (const name of Object.keys(m.counters) as CounterName[]) m.counters[name] = saved.counters[name] ?? 0;
    for (const surface of SURFACES) for (const c of SURFACE_COUNTERS) m.surfaces[surface][c] = saved.surfaces?.[surface]?.[c] ?? 0;
    for (const [alias, s] of Object.entries(saved.spend ?? {})) m.spend.set(alias, { served: s.served ?? 0, wasted: s.wasted ?? 0 });
    m.queueMs.restore(saved.queueMs);
    m.totalMs.restore(saved.totalMs);
    for (const [id, b] of Object.entries(saved.backends)) {
      const c = m.backend(id);
      c.attempts = b.attempts;
      c.successes = b.successes;
      c.failures = b.failures;
      c.cancelled = b.cancelled ?? 0;
      c.abandoned = b.abandoned ?? 0;
      c.authFailures = b.authFailures ?? 0;
      c.hedged = b.hedged ?? 0;
      c.hedges = b.hedges ?? 0;
      c.tokens = b.tokens ?? 0;
      for (const cause of WASTE_CAUSES) c.wasted[cause] = b.wasted?.[cause] ?? 0;
      c.ttft.restore(b.ttft);
    }
    return m;
  }

  count(name: CounterName, n = 1): void {
    this.counters[name] += n;
    this.changed();
  }

  /** A request of `surface` (chat when absent) was given a slot, or ended so: counted for the tenant and for its surface. */
  countFor(surface: SurfaceName | undefined, name: SurfaceCounter): void {
    this.surfaces[surface ?? "chat"][name]++;
    this.count(name);
  }

  queued(ms: number, now: number): void {
    this.queueMs.record(ms);
    this.recent.queued(ms, now);
    this.changed();
  }

  /** A request ended, `ms` after it got its slot, having made `attempts` upstream attempts. */
  finished(ms: number, attempts: number, now: number, deadLettered = false): void {
    this.totalMs.record(ms);
    this.recent.ended(attempts, now);
    if (deadLettered) this.recent.deadLettered(now);
    this.changed();
  }

  budgetDenied(now: number): void {
    this.recent.budgetDenied(now);
    this.count("budgetDenied");
  }

  attemptStarted(backendId: string, continuation: boolean): void {
    this.counters.attempts++;
    if (continuation) this.counters.continuations++;
    this.backend(backendId).attempts++;
    this.changed();
  }

  /** An attempt's end. A 4xx for a bad request counts as a success: the backend is up. */
  attemptEnded(report: Pick<AttemptReport, "backendId" | "outcome" | "ttftMs" | "errorCode" | "waste">, tokens: number, now: number): void {
    const { backendId, outcome, ttftMs } = report;
    this.recent.attemptEnded(backendId, outcome === "failure", ttftMs, now);
    const c = this.backend(backendId);
    if (outcome === "failure") {
      c.failures++;
      if (report.errorCode === "upstream_auth_failed") c.authFailures++;
    } else if (outcome === "cancelled") c.cancelled++;
    else c.successes++;
    if (ttftMs !== undefined) c.ttft.record(ttftMs);
    c.tokens += tokens;
    this.counters.completionTokens += tokens;
    for (const w of report.waste ?? []) {
      this.backend(w.backendId).wasted[w.cause] += w.tokens;
      this.counters.wastedTokens += w.tokens;
    }
    this.changed();
  }

  /** `usd` spent on model `alias` (the aliases a tenant ever had, at most MAX_SPEND_ALIASES; the rest under "other"). */
  spent(alias: string, kind: SpendKind, usd: number): void {
    if (usd === 0) return;
    const name = this.spend.has(alias) || this.spend.size < MAX_SPEND_ALIASES ? alias : "other";
    let s = this.spend.get(name);
    if (!s) this.spend.set(name, (s = { served: 0, wasted: 0 }));
    s[kind] += usd;
    this.changed();
  }

  /** A hedge of an attempt on `hedgedId` started on `hedgeId`. */
  hedgeStarted(hedgedId: string, hedgeId: string): void {
    this.counters.hedgesStarted++;
    this.backend(hedgedId).hedged++;
    this.backend(hedgeId).hedges++;
    this.attemptStarted(hedgeId, false);
  }

  /** An attempt ended without a report (see BackendCounters.abandoned). */
  attemptAbandoned(backendId: string): void {
    this.backend(backendId).abandoned++;
    this.changed();
  }

  backendCounters(id: string): BackendCounters | undefined {
    return this.backends.get(id);
  }

  toJSON(): SavedMetrics {
    return {
      counters: this.counters,
      surfaces: this.surfaces,
      spend: Object.fromEntries(this.spend),
      queueMs: this.queueMs.toJSON(),
      totalMs: this.totalMs.toJSON(),
      backends: Object.fromEntries(
        [...this.backends].map(([id, c]) => [
          id,
          {
            attempts: c.attempts,
            successes: c.successes,
            failures: c.failures,
            cancelled: c.cancelled,
            abandoned: c.abandoned,
            authFailures: c.authFailures,
            hedged: c.hedged,
            hedges: c.hedges,
            tokens: c.tokens,
            wasted: { ...c.wasted },
            ttft: c.ttft.toJSON(),
          },
        ]),
      ),
    };
  }

  private backend(id: string): BackendCounters {
    let c = this.backends.get(id);
    if (!c)
      this.backends.set(
        id,
        (c = {
          attempts: 0,
          successes: 0,
          failures: 0,
          cancelled: 0,
          abandoned: 0,
          authFailures: 0,
          hedged: 0,
          hedges: 0,
          tokens: 0,
          wasted: { regenerated: 0, restarted: 0 },
          ttft: new LatencyHistogram(),
        }),
      );
    return c;
  }
}
