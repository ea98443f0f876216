// The issue's targets for sluice, judged from one run's figures, so every report says itself which
// targets it met. Pure: results in, verdicts out.
import type { AlertTimeline } from "./alert-watch";
import type { BatchRun } from "./batch";
import type { SlowPoolRun } from "./slow-pool";
import type { NoisyNeighbourRun } from "./noisy-neighbour";
import { MULTI_TURN_CAPACITY, type MultiTurnRun } from "./multi-turn";
import type { WorkflowBench } from "./workflow";
import { SLOW_START_FACTOR, SLOW_START_RATE, type SlowStartsRun } from "./slow-starts";
import type { GrowingQueueRun } from "./growing-queue";
import type { SystemRun as Run } from "./summary";
import type { CpuSplit } from "./overhead";

export interface Verdict {
  target: string;
  measured: string;
  /** Undefined when the run lacks what the target needs (a scenario or a system left out). */
  met: boolean | undefined;
}

export interface RunResults {
  overhead?: Record<string, Record<string, Run>>;
  overload?: Record<string, Run>;
  chaos?: Record<string, Run>;
  /** Each relay's CPU per request split into its fixed part and its part per token (ms). */
  fixedCpu?: Record<string, CpuSplit>;
  /** sluice's CPU per request (ms) on each API it speaks. */
  surfaceCpu?: Record<string, number>;
  batch?: BatchRun;
  /** The batch scenario with the tenant's backends a shared pool's. */
  batchPool?: BatchRun;
  workflow?: WorkflowBench;
  /** Every backend 5x slower for a while: with a fixed maxConcurrency, and with adaptiveConcurrency. */
  slowPool?: Record<"fixed" | "adaptive", SlowPoolRun>;
  /** Conversations over backends with prefix caches: with affinity, and least-loaded. */
  multiTurn?: Record<"affinity" | "leastLoaded", MultiTurnRun>;
  /** One backend in four slow to start one time in ten: without hedging, and with it. */
  slowStarts?: Record<"plain" | "hedged", SlowStartsRun>;
  /** One backend's capacity halves mid-run: routed with the servers' reported queues, and by sluice's own count alone. */
  growingQueue?: Record<"serverState" | "ownCount", GrowingQueueRun>;
  /** Two tenants on a shared pool, one offering five times its share. */
  noisyNeighbour?: NoisyNeighbourRun;
}

/** Interactive TTFT beside a batch: at most this much over the baseline without one. */
const BATCH_TTFT_RATIO = 1.1;
/** Backend utilisation while a batch has lines left: at least this. */
const BATCH_UTILISATION = 0.95;

/** At most this much TTFT p50 over the pass-through at one stream, in ms. */
const ONE_STREAM_ADDED_MS = 1;
const TTFT_P50_RATIO = 1.5;
const TTFT_P99_RATIO = 2;
/** sluice's fixed CPU per request: at most this much over the JS relay's, in ms. */
const FIXED_CPU_OVER_RELAY_MS = 0.25;
const TOKENS_SHARE_OF_DIRECT = 0.9;
const CHAOS_EXACT_SHARE = 0.999;
const CHAOS_ATTEMPTS = 1.3;
const UTILISATION_WHILE_QUEUED = 0.95;
const REJECT_WITHIN_MS = 20;
/** CPU per request on a translated API: at most this much over chat completions'. */
const SURFACE_CPU_RATIO = 1.1;
/** Prefix-cache hit rate with affinity: at least this. */
const MULTI_TURN_HIT_RATE = 0.8;
/** TTFT p50 with affinity: at most this share of least-loaded routing's. */
const MULTI_TURN_TTFT_RATIO = 0.7;
/** A quiet tenant's TTFT p99 beside a noisy one on a shared pool: at most this much over alone. */
const NOISY_TTFT_P99_RATIO = 1.2;
/** Slow starts: TTFT p99 with hedging at most this much of without, for at most this many more attempts. */
const SLOW_STARTS_TTFT_RATIO = 0.5;
const SLOW_STARTS_EXTRA_ATTEMPTS = 0.05;
/** Interactive TTFT p99 beside a batch on a shared pool: at most this much over without. */
const POOL_BATCH_TTFT_RATIO = 1.2;
/** Backend utilisation on a shared pool while any tenant waits: at least this. */
const POOL_UTILISATION = 0.95;
/** After a slow pool recovers, TTFT is back within this long. */
const SLOW_POOL_RECOVERY_MS = 10_000;

const ms = (n: number | undefined) => (n === undefined ? "–" : `${n} ms`);
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
const x = (r: number | undefined) => (r === undefined ? "–" : `${r.toFixed(2)}x`);
const pct = (n: number) => `${(n * 100).toFixed(2)}%`;
const streamsAt = (level: string) => `${level.slice(1)} stream${level === "c1" ? "" : "s"}`;
const within = (value: number | undefined, limit: number) => (value === undefined ? undefined : value <= limit);

export function judgeTargets(results: RunResults): Verdict[] {
  const verdicts: Verdict[] = [];
  const levels = Object.keys(results.overhead ?? {}).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  for (const level of levels) {
    const runs = results.overhead![level]!;
    const n = Number(level.slice(1));
    const sluice = runs.sluice?.summary;
    const pass = runs.passthrough?.summary;
    const direct = runs.direct?.summary;
    const streams = streamsAt(level);
    if (n === 1) {
      const added = sluice?.ttftMs.p50 !== undefined && pass?.ttftMs.p50 !== undefined ? sluice.ttftMs.p50 - pass.ttftMs.p50 : undefined;
      verdicts.push({
        target: `${streams}: TTFT p50 at most +${ONE_STREAM_ADDED_MS} ms over the pass-through`,
        measured: `${ms(sluice?.ttftMs.p50)} vs ${ms(pass?.ttftMs.p50)} (+${added?.toFixed(1) ?? "–"} ms)`,
        met: within(added, ONE_STREAM_ADDED_MS),
      });
    } else {
      const p50 = ratio(sluice?.ttftMs.p50, pass?.ttftMs.p50);
      const p99 = ratio(sluice?.ttftMs.p99, pass?.ttftMs.p99);
      verdicts.push({
        target: `${streams}: TTFT p50 at most ${TTFT_P50_RATIO}x the pass-through's`,
        measured: `${ms(sluice?.ttftMs.p50)} vs ${ms(pass?.ttftMs.p50)} (${x(p50)})`,
        met: within(p50, TTFT_P50_RATIO),
      });
      verdicts.push({
        target: `${streams}: TTFT p99 at most ${TTFT_P99_RATIO}x the pass-through's`,
        measured: `${ms(sluice?.ttftMs.p99)} vs ${ms(pass?.ttftMs.p99)} (${x(p99)})`,
        met: within(p99, TTFT_P99_RATIO),
      });
    }
    const share = ratio(sluice?.tokensPerSec, direct?.tokensPerSec);
    verdicts.push({
      target: `${streams}: tokens/s at least ${TOKENS_SHARE_OF_DIRECT * 100}% of direct`,
      measured: `${sluice?.tokensPerSec ?? "–"} vs ${direct?.tokensPerSec ?? "–"} (${share === undefined ? "–" : pct(share)})`,
      met: share === undefined ? undefined : share >= TOKENS_SHARE_OF_DIRECT,
    });
  }
  const top = levels.at(-1);
  if (top) {
    const sluice = results.overhead![top]!.sluice?.summary;
    const errors = sluice ? (sluice.outcomes.transport_error ?? 0) : undefined;
    verdicts.push({
      target: `${streamsAt(top)}: zero transport errors`,
      measured: String(errors ?? "–"),
      met: errors === undefined ? undefined : errors === 0,
    });
  }

  const chaos = results.chaos?.sluice;
  if (chaos) {
    const o = chaos.summary.outcomes;
    const wrong = (o.truncated ?? 0) + (o.duplicated ?? 0);
    const leaked = (chaos.extra as { leakedSlots?: number } | undefined)?.leakedSlots;
    verdicts.push({
      target: `chaos: at least ${pct(CHAOS_EXACT_SHARE)} complete with exact text`,
      measured: `${pct(chaos.summary.exactShare)} (${o.exact ?? 0} of ${chaos.summary.calls})`,
      met: chaos.summary.exactShare >= CHAOS_EXACT_SHARE,
    });
    verdicts.push({
      target: `chaos: at most ${CHAOS_ATTEMPTS} upstream attempts per request`,
      measured: String(chaos.attemptsPerCall),
      met: chaos.attemptsPerCall <= CHAOS_ATTEMPTS,
    });
    const alerts = (chaos.extra as { alerts?: AlertTimeline } | undefined)?.alerts;
    if (alerts) {
      const fired = Object.entries(alerts.firingAfterOutageMs);
      const resolved = fired.map(([b]) => alerts.resolvedAfterRecoveryMs[b]);
      verdicts.push({
        target: "chaos: a signed breaker alert after the outage began, resolved after the recovery",
        measured:
          fired
            .map(([b, ms], i) => `${b} fired +${ms} ms, resolved ${resolved[i] === undefined ? "never" : `+${resolved[i]} ms`}`)
            .join("; ") || "none fired",
        met: fired.length > 0 && resolved.every((ms) => ms !== undefined) && alerts.badSignatures === 0,
      });
    }
    verdicts.push({
      target: "chaos: zero truncated, duplicated or leaked",
      measured: `${o.truncated ?? 0} / ${o.duplicated ?? 0} / ${leaked ?? "–"}`,
      met: leaked === undefined ? undefined : wrong === 0 && leaked === 0,
    });
  }

  for (const surface of ["messages", "responses"]) {
    const run = results.chaos?.[`sluice-${surface}`];
    if (!run) continue;
    const o = run.summary.outcomes;
    const explicit = (o.exact ?? 0) + (o.partial_with_error ?? 0) + (o.rejected ?? 0);
    const corrupted = o.corrupted_tool_call ?? 0;
    verdicts.push({
      target: `chaos over /v1/${surface}: agent sessions 100% exact or explicit, zero corrupted tool calls`,
      measured: `${pct(explicit / Math.max(1, run.summary.calls))} (${o.exact ?? 0} exact, ${explicit - (o.exact ?? 0)} explicit errors of ${run.summary.calls}), ${corrupted} corrupted`,
      met: run.summary.calls > 0 && explicit === run.summary.calls && corrupted === 0,
    });
  }
  const cpu = results.surfaceCpu;
  for (const surface of ["messages", "responses"]) {
    if (!cpu?.chat || cpu[surface] === undefined) continue;
    const r = cpu[surface]! / cpu.chat;
    verdicts.push({
      target: `overhead: CPU per request over /v1/${surface} at most ${Math.round((SURFACE_CPU_RATIO - 1) * 100)}% over chat's`,
      measured: `${cpu[surface]} ms vs ${cpu.chat} ms (${x(r)})`,
      met: r <= SURFACE_CPU_RATIO,
    });
  }

  const fixed = results.fixedCpu;
  if (fixed?.sluice && fixed["js-relay"]) {
    const [ours, relay] = [fixed.sluice, fixed["js-relay"]];
    const pass = fixed.passthrough ? `; pass-through ${fixed.passthrough.fixedMs} ms` : "";
    verdicts.push({
      target: `overhead: fixed CPU per request at most the JS relay's + ${FIXED_CPU_OVER_RELAY_MS} ms`,
      measured: `${ours.fixedMs} ms vs ${relay.fixedMs} ms (+${(ours.fixedMs - relay.fixedMs).toFixed(3)} ms; per token ${(ours.perTokenMs * 1000).toFixed(0)} vs ${(relay.perTokenMs * 1000).toFixed(0)} µs${pass})`,
      met: ours.fixedMs <= relay.fixedMs + FIXED_CPU_OVER_RELAY_MS,
    });
  }

  const slowPool = results.slowPool;
  if (slowPool) {
    const { fixed, adaptive } = slowPool;
    verdicts.push({
      target: "slow pool: no retry_budget_exhausted, no request failed (adaptiveConcurrency)",
      measured: `${adaptive.retryBudgetExhausted} budget exhausted, ${adaptive.failed} failed of ${adaptive.summary.calls}, ${adaptive.slowTimeouts} slow timeouts (fixed maxConcurrency: ${fixed.retryBudgetExhausted} and ${fixed.failed} of ${fixed.summary.calls})`,
      met: adaptive.retryBudgetExhausted === 0 && adaptive.failed === 0,
    });
    const recovered = (r: SlowPoolRun) => (r.recoveredAfterMs === undefined ? "never" : `${r.recoveredAfterMs} ms`);
    verdicts.push({
      target: `slow pool: TTFT back within ${SLOW_POOL_RECOVERY_MS / 1000} s of the recovery (adaptiveConcurrency)`,
      measured: `${recovered(adaptive)} (fixed maxConcurrency: ${recovered(fixed)})`,
      met: adaptive.recoveredAfterMs !== undefined && adaptive.recoveredAfterMs <= SLOW_POOL_RECOVERY_MS,
    });
  }

  const turns = results.multiTurn;
  if (turns) {
    const { affinity, leastLoaded } = turns;
    verdicts.push({
      target: `multi-turn sessions: prefix-cache hit rate at least ${MULTI_TURN_HIT_RATE * 100}% with affinity`,
      measured: `${pct(affinity.hitRate)} (least-loaded: ${pct(leastLoaded.hitRate)}); ${affinity.failed} of ${affinity.turns} turns failed`,
      met: affinity.hitRate >= MULTI_TURN_HIT_RATE && affinity.failed === 0,
    });
    const r = ratio(affinity.ttftMs.p50, leastLoaded.ttftMs.p50);
    verdicts.push({
      target: `multi-turn sessions: TTFT p50 at least ${Math.round((1 - MULTI_TURN_TTFT_RATIO) * 100)}% lower with affinity than least-loaded`,
      measured: `${ms(affinity.ttftMs.p50)} vs ${ms(leastLoaded.ttftMs.p50)} (${x(r)}); p99 ${ms(affinity.ttftMs.p99)} vs ${ms(leastLoaded.ttftMs.p99)}`,
      met: r === undefined ? undefined : r <= MULTI_TURN_TTFT_RATIO,
    });
    verdicts.push({
      target: "multi-turn sessions: no backend above its capacity",
      measured: `peak open per backend ${affinity.peakOpen.join(", ")} with affinity, ${leastLoaded.peakOpen.join(", ")} least-loaded, of ${MULTI_TURN_CAPACITY}`,
      met: [...affinity.peakOpen, ...leastLoaded.peakOpen].every((p) => p <= MULTI_TURN_CAPACITY),
    });
  }

  const slow = results.slowStarts;
  if (slow) {
    const { plain, hedged } = slow;
    const r = ratio(hedged.ttftMs.p99, plain.ttftMs.p99);
    verdicts.push({
      target: `slow starts (1 backend in 4 slow to start ${SLOW_START_RATE * 100}% of the time, ${SLOW_START_FACTOR}x): TTFT p99 at most ${SLOW_STARTS_TTFT_RATIO}x with hedging, nothing failed`,
      measured: `${ms(hedged.ttftMs.p99)} vs ${ms(plain.ttftMs.p99)} (${x(r)}; p50 ${ms(hedged.ttftMs.p50)} vs ${ms(plain.ttftMs.p50)}); ${hedged.failed + plain.failed} of ${hedged.calls + plain.calls} failed`,
      met: r === undefined ? undefined : r <= SLOW_STARTS_TTFT_RATIO && hedged.failed + plain.failed === 0,
    });
    const extra = plain.attemptsPerCall === 0 ? undefined : hedged.attemptsPerCall / plain.attemptsPerCall - 1;
    verdicts.push({
      target: `slow starts: at most ${SLOW_STARTS_EXTRA_ATTEMPTS * 100}% more upstream attempts with hedging`,
      measured: `${extra === undefined ? "–" : pct(extra)} (${hedged.attemptsPerCall} vs ${plain.attemptsPerCall} per call; ${hedged.hedges.started} hedges, ${hedged.hedges.won} won, ${hedged.hedges.denied} refused by the budget)`,
      met: extra === undefined ? undefined : extra <= SLOW_STARTS_EXTRA_ATTEMPTS,
    });
  }

  const growing = results.growingQueue;
  if (growing) {
    const { serverState, ownCount } = growing;
    verdicts.push({
      target:
        "growing queue: the backend whose capacity halved keeps less traffic, and TTFT p99 is lower, routing by the servers' reported queues than by sluice's own count",
      measured: `its share ${pct(serverState.shrunkShare)} vs ${pct(ownCount.shrunkShare)}; TTFT p99 ${ms(serverState.ttftMs.p99)} vs ${ms(ownCount.ttftMs.p99)} (p50 ${ms(serverState.ttftMs.p50)} vs ${ms(ownCount.ttftMs.p50)}); ${serverState.failed + ownCount.failed} failed`,
      met:
        serverState.ttftMs.p99 === undefined || ownCount.ttftMs.p99 === undefined
          ? undefined
          : serverState.shrunkShare < ownCount.shrunkShare &&
            serverState.ttftMs.p99 < ownCount.ttftMs.p99 &&
            serverState.failed + ownCount.failed === 0,
    });
  }

  const noisy = results.noisyNeighbour;
  if (noisy) {
    const { alone, beside } = noisy.ttftMs;
    const r = ratio(beside.p99, alone.p99);
    verdicts.push({
      target: `noisy neighbour: the quiet tenant's TTFT p99 beside a tenant offering 5x its share at most ${NOISY_TTFT_P99_RATIO}x alone, nothing of it failed`,
      measured: `${ms(beside.p99)} vs ${ms(alone.p99)} (${x(r)}; p50 ${ms(beside.p50)} vs ${ms(alone.p50)}), ${noisy.aFailed} of ${noisy.aCalls} failed; its wait for a slot beside it: p50 under ${ms(noisy.aQueueMs.p50)}, p99 under ${ms(noisy.aQueueMs.p99)}`,
      met: r === undefined ? undefined : r <= NOISY_TTFT_P99_RATIO && noisy.aFailed === 0,
    });
    verdicts.push({
      target: "noisy neighbour: no backend ever runs more than the pool's capacity for it",
      measured: `peak open per backend ${noisy.peakOpen.join(", ")} of ${noisy.capacityPerBackend}`,
      met: noisy.peakOpen.every((p) => p <= noisy.capacityPerBackend),
    });
    verdicts.push({
      target: `noisy neighbour: backend utilisation at least ${POOL_UTILISATION * 100}% while anyone waits`,
      measured: `${round2(noisy.utilisationWhileWaiting * 100)}%; the noisy tenant's 429s: ${noisy.b429} of ${noisy.bCalls}; tokens served ${noisy.tokens.a} (quiet) and ${noisy.tokens.b} (noisy)`,
      met: noisy.utilisationWhileWaiting >= POOL_UTILISATION,
    });
  }

  const batch = results.batch;
  if (batch) {
    const { baseline, halfWithBatch } = batch.ttftMs;
    const ratio = (p: "p50" | "p99") => (baseline[p] && halfWithBatch[p] ? round2(halfWithBatch[p]! / baseline[p]!) : undefined);
    for (const p of ["p50", "p99"] as const)
      verdicts.push({
        target: `batch: interactive TTFT ${p} beside a batch at most ${BATCH_TTFT_RATIO}x without (half capacity)`,
        measured: `${halfWithBatch[p]} ms vs ${baseline[p]} ms (${ratio(p)}x); at full capacity ${batch.ttftMs.fullWithBatch[p]} ms`,
        met: ratio(p) === undefined ? undefined : ratio(p)! <= BATCH_TTFT_RATIO,
      });
    verdicts.push({
      target: `batch: backend utilisation at least ${BATCH_UTILISATION * 100}% while the batch has lines left`,
      measured: `${round2(batch.utilisationWithBatch * 100)}%, ${batch.linesPerMinute} lines/min`,
      met: batch.utilisationWithBatch >= BATCH_UTILISATION,
    });
    verdicts.push({
      target: "batch: zero duplicate generations, zero lost lines",
      measured: `${batch.duplicates} / ${batch.lost} (${batch.completed} of ${batch.lines} completed, ${batch.failed} failed)`,
      met: batch.duplicates === 0 && batch.lost === 0,
    });
  }

  const pooled = results.batchPool;
  if (pooled) {
    const { baseline, halfWithBatch } = pooled.ttftMs;
    const r = ratio(halfWithBatch.p99, baseline.p99);
    verdicts.push({
      target: `batch on a shared pool: interactive TTFT p99 beside a batch at most ${POOL_BATCH_TTFT_RATIO}x without (half capacity)`,
      measured: `${ms(halfWithBatch.p99)} vs ${ms(baseline.p99)} (${x(r)}; p50 ${ms(halfWithBatch.p50)} vs ${ms(baseline.p50)})`,
      met: r === undefined ? undefined : r <= POOL_BATCH_TTFT_RATIO,
    });
    verdicts.push({
      target: `batch on a shared pool: backend utilisation at least ${POOL_UTILISATION * 100}% while the batch has lines left, nothing lost or duplicated`,
      measured: `${round2(pooled.utilisationWithBatch * 100)}%, ${pooled.linesPerMinute} lines/min; ${pooled.duplicates} duplicates, ${pooled.lost} lost (${pooled.completed} of ${pooled.lines} completed)`,
      met: pooled.utilisationWithBatch >= POOL_UTILISATION && pooled.duplicates === 0 && pooled.lost === 0,
    });
  }

  const workflow = results.workflow;
  if (workflow) {
    const { sluice: s, naive: n } = workflow;
    const line = (r: typeof s) =>
      `${r.completed} full, ${r.partial} partial, ${r.failed} failed of ${r.runs}; ${r.llmCallsPerRun} LLM calls a run; e2e p50 ${ms(r.endToEndMs.p50)}, p99 ${ms(r.endToEndMs.p99)}`;
    verdicts.push({
      target: "workflow: more runs end with an answer (fully or partially) than the naive chain",
      measured: `sluice ${line(s)} | naive ${line(n)}`,
      met: s.completed + s.partial > n.completed,
    });
    verdicts.push({
      target: "workflow: exactly one effect call per run that reached its effect step",
      measured: `${s.effectCallsPerRun} a run, ${s.repeatedEffects} applied twice (naive: ${n.effectCallsPerRun})`,
      met: s.effectCallsPerRun === 1 && s.repeatedEffects === 0,
    });
  }

  const overload = results.overload?.sluice;
  if (overload) {
    const u = overload.utilisationWhileQueued;
    verdicts.push({
      target: `overload: backend utilisation at least ${UTILISATION_WHILE_QUEUED * 100}% while requests wait`,
      measured: u === undefined ? "–" : pct(u),
      met: u === undefined ? undefined : u >= UTILISATION_WHILE_QUEUED,
    });
    const r = overload.rejected429Ms;
    // "Answered within" bounds every 429, so the verdict takes the p99; the p50 is shown beside it.
    verdicts.push({
      target: `overload: 429s answered within ${REJECT_WITHIN_MS} ms (p99)`,
      measured: `p50 ${ms(r?.p50)}, p99 ${ms(r?.p99)}`,
      met: within(r?.p99, REJECT_WITHIN_MS),
    });
  }

  // Against the peer: less added latency at every level, at the median and in the tail, more
  // exact answers under chaos.
  for (const level of levels) {
    const runs = results.overhead![level]!;
    for (const q of ["p50", "p99"] as const) {
      const base = runs.passthrough?.summary.ttftMs[q];
      const ours = runs.sluice?.summary.ttftMs[q];
      const peer = runs.portkey?.summary.ttftMs[q];
      if (peer === undefined || base === undefined || ours === undefined) continue;
      verdicts.push({
        target: `${streamsAt(level)}: less added TTFT ${q} than Portkey`,
        measured: `+${(ours - base).toFixed(1)} vs +${(peer - base).toFixed(1)} ms`,
        met: ours - base < peer - base,
      });
    }
  }
  const peerChaos = results.chaos?.portkey;
  if (chaos && peerChaos) {
    verdicts.push({
      target: "chaos: more exact answers than Portkey",
      measured: `${pct(chaos.summary.exactShare)} vs ${pct(peerChaos.summary.exactShare)}`,
      met: chaos.summary.exactShare > peerChaos.summary.exactShare,
    });
  }
  return verdicts;
}

const round2 = (n: number) => Math.round(n * 100) / 100;
