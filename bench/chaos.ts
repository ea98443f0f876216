// Scenarios 3-5: chaos, for sluice, the naive pass-through and the peer. 20% of attempts fail
// before the first token, 5% of streams are cut mid-way, and one region is down for the middle
// third of the run: exact answers, attempts per call, leaked slots, dead letters, breaker alerts.
// sluice's agent sessions run again over /v1/messages and /v1/responses, judged by the same rule.
import { callOnce, closedLoop, pick, type Target, type TargetChoice } from "./load";
import { trafficMix, type Session } from "./traffic";
import { round, summarize, type SystemRun } from "./summary";
import { createTenant, type Fleet, type System } from "./stack";
import { AlertWatch } from "./alert-watch";
import { adminGet, configureFleet, deadLetterLines, diagLine, gateStats, measure, progress, settle, type TargetList } from "./measure";

/**
 * What the sims' tokens cost in the chaos runs, in US dollars per million: a hosted model's list
 * price, the same for every system, so "what retries cost" is comparable.
 */
export const CHAOS_PRICE = { inputPerMTok: 3, outputPerMTok: 15 };

const dollars = (prompt: number, output: number) => (prompt * CHAOS_PRICE.inputPerMTok + output * CHAOS_PRICE.outputPerMTok) / 1e6;

export interface ChaosParams {
  chaosWorkers: number;
  chaosMs: number;
  longTokens: number;
  seed: number;
}

export async function chaosScenario(
  fleet: Fleet,
  sluiceUrl: string,
  targets: (key: string) => TargetList,
  violations: string[],
  P: ChaosParams,
) {
  // The chaos tenant's breaker alerts go to a local webhook receiver: "firing" during the outage, "resolved" after.
  const alerts = await AlertWatch.start();
  const key = await createTenant(
    sluiceUrl,
    "chaos",
    fleet,
    {
      limits: { maxConcurrency: 5_000, maxQueue: 5_000 },
      // Tuned for a fleet whose baseline is 20% failed attempts: a budget that covers it (0.5) and a
      // breaker that trips on outages, not on runs of bad luck. Six attempts: with one region down,
      // a long stream that dies mid-way continues on two backends that fail 20% of attempts and
      // drop 5% of streams, and five attempts left about one request in a thousand exhausted (the
      // dead letters of the runs show exactly that); a sixth costs an attempt only there.
      retry: { maxAttempts: 6, baseDelayMs: 20, budgetRatio: 0.6, budgetWindowMs: 10_000 },
      // An outage of seconds: the cooldown doubles per re-open up to 8 s, so a backend that is back is probed soon.
      breaker: { failureRate: 0.5, minRequests: 10, windowMs: 5_000, cooldownMs: 2_000, maxCooldownMs: 8_000, consecutiveFailures: 8 },
      timeouts: { firstTokenMs: 5_000, idleMs: 5_000 },
      idempotency: { maxEntries: 1_000 },
      alerts: alerts.config(),
      // The alert receiver listens on 127.0.0.1.
      outbound: { allowPrivateHosts: true },
    },
    { maxConcurrency: 64, price: CHAOS_PRICE },
  );
  // The first two sims (us-east) go down.
  const down = fleet.specs.slice(0, 2).map((s) => s.id);
  const out: Record<string, SystemRun> = {};
  const sessions = trafficMix(100_000, { seed: P.seed, longTokens: P.longTokens });
  const run = (target: TargetChoice, system: System | undefined, label: string, list: Session[], ms: number) =>
    chaosRun(fleet, sluiceUrl, { target, system, label, sessions: list, ms, workers: P.chaosWorkers });
  for (const { target, system } of targets(key)) {
    const name = pick(target, 0).name;
    if (name === "direct") continue; // direct calls have no failover: the naive pass-through stands for them
    const { summary, outcome } = await run(target, system, name === "passthrough" ? "naive pass-through" : name, sessions, P.chaosMs);
    out[name] = outcome;
    if (name === "sluice") {
      await configureFleet(fleet, { failRate: 0, disconnectRate: 0 });
      const leaked = await waitForIdle(sluiceUrl, "chaos");
      const stats = await gateStats(sluiceUrl, "chaos");
      // The ledger holds this run only: the agent sessions over the other APIs come after.
      const ledger = (await (await adminGet(sluiceUrl, "/tenants/chaos/spend")).json()) as {
        total: { served_usd: number; wasted_usd: number; wasted_by_cause: Record<string, number>; estimated_attempts: number };
      };
      outcome.spend!.ledger = {
        servedUsd: round(ledger.total.served_usd, 4),
        wastedUsd: round(ledger.total.wasted_usd, 4),
        wastedByCause: Object.fromEntries(Object.entries(ledger.total.wasted_by_cause).map(([k, v]) => [k, round(v, 4)])),
        estimatedAttempts: ledger.total.estimated_attempts,
      };
      outcome.extra = {
        leakedSlots: leaked,
        gate: stats.counters,
        journal: stats.journal,
        deadLetters: await deadLetterLines(sluiceUrl, "chaos"),
        alerts: await alerts.check(sluiceUrl, "chaos", down, outcome.outageWindow!, violations, () =>
          callOnce(pick(target, 0), { messages: [{ role: "user", content: "after the outage" }], maxTokens: 4 }),
        ),
      };
      delete outcome.outageWindow;
      brokenPromises("chaos/sluice", summary, violations);
      if (leaked > 0) violations.push(`chaos/sluice: ${leaked} slots still held after the run`);
      // The agent sessions again, over the Anthropic Messages and OpenAI Responses routes (half the time each).
      const agents = sessions.filter((s) => s.kind === "agent");
      for (const surface of ["messages", "responses"] as const) {
        const over = { ...(target as Target), surface };
        const r = await run(over, system, `sluice agent sessions over /v1/${surface}`, agents, P.chaosMs / 2);
        delete r.outcome.outageWindow;
        out[`sluice-${surface}`] = { ...r.outcome, system: `sluice over /v1/${surface}` };
        brokenPromises(`chaos/sluice over /v1/${surface}`, r.summary, violations);
        await configureFleet(fleet, { failRate: 0, disconnectRate: 0 });
        const stillHeld = await waitForIdle(sluiceUrl, "chaos");
        if (stillHeld > 0) violations.push(`chaos/sluice over /v1/${surface}: ${stillHeld} slots still held after the run`);
      }
    }
    await settle(fleet);
  }
  await configureFleet(fleet, { failRate: 0, disconnectRate: 0 });
  await alerts.close();
  return out;
}

/** What sluice must never answer, under any chaos: a truncated, duplicated or wrong answer, a broken stream, a corrupted tool call. */
function brokenPromises(label: string, summary: ReturnType<typeof summarize>, violations: string[]): void {
  for (const bad of ["truncated", "duplicated", "mismatch", "transport_error", "corrupted_tool_call"] as const) {
    if (summary.outcomes[bad]) violations.push(`${label}: ${summary.outcomes[bad]} calls ${bad}`);
  }
}

/**
 * One system's chaos run: the fleet fails 20% of attempts and cuts 5% of streams, and us-east is
 * down for the middle third of `ms`, while `workers` clients play `sessions`.
 */
async function chaosRun(
  fleet: Fleet,
  sluiceUrl: string,
  o: { target: TargetChoice; system: System | undefined; label: string; sessions: Session[]; ms: number; workers: number },
): Promise<{ summary: ReturnType<typeof summarize>; outcome: SystemRun & { outageWindow?: { outageAt: number; recoveryAt: number } } }> {
  const { name, surface } = pick(o.target, 0);
  await configureFleet(fleet, { failRate: 0.2, failStatus: 503, disconnectRate: 0.05, hangRate: 0, maxConcurrency: 64 });
  let count = 0;
  const stop = progress(`chaos (20% fail before first token, 5% cut mid-stream, us-east down 30-60%), ${o.label}`, () => count);
  // BENCH_DIAG=1: the gate's queue and each backend's breaker once a second, to see trips as they happen.
  const diagStarted = Date.now();
  const diag =
    process.env.BENCH_DIAG && name === "sluice"
      ? setInterval(
          () =>
            void gateStats(sluiceUrl, "chaos")
              .then((st) => console.log(diagLine(st, diagStarted)))
              .catch(() => {}),
          1000,
        )
      : undefined;
  const window = { outageAt: 0, recoveryAt: 0 };
  const outage = setTimeout(() => {
    window.outageAt = Date.now();
    void Promise.all([0, 1].map((i) => fleet.control(i, { failRate: 1 })));
  }, o.ms * 0.3);
  const recovery = setTimeout(() => {
    window.recoveryAt = Date.now();
    void Promise.all([0, 1].map((i) => fleet.control(i, { failRate: 0.2 })));
  }, o.ms * 0.6);
  // sluice's clients send an Idempotency-Key, so its journal works (and must stay bounded) under chaos.
  const tag = o.label.replace(/[^A-Za-z0-9]+/g, "-");
  const keys = name === "sluice" ? (id: string, n: number) => ({ "idempotency-key": `${tag}-${id}-${n}` }) : undefined;
  const metered = await simMeter(fleet);
  const m = await measure(
    o.system,
    fleet,
    () => closedLoop(o.target, o.sessions, o.workers, o.ms, () => count++, keys),
    64 * fleet.specs.length,
  );
  // Generations cancelled at the end of the run still count what they generated by then.
  await settle(fleet);
  const after = await simMeter(fleet);
  const usd = dollars(after.prompt - metered.prompt, after.output - metered.output);
  const answersUsd = m.results.reduce((n, r) => n + (r.billed ? dollars(r.billed.prompt, r.billed.completion) : 0), 0);
  clearTimeout(outage);
  clearTimeout(recovery);
  clearInterval(diag);
  stop();
  const summary = summarize(m.results, m.wallMs);
  return {
    summary,
    outcome: {
      system: name,
      summary,
      attemptsPerCall: m.attemptsPerCall,
      router: m.router,
      utilisation: m.samples.map((s) => [s.t, round(s.util, 3)]),
      outageWindow: window,
      // Whole answers are metered for chat calls only: the other APIs reach the sims translated.
      ...(surface === undefined || surface === "chat"
        ? { spend: { usd: round(usd, 4), answersUsd: round(answersUsd, 4), restUsd: round(usd - answersUsd, 4) } }
        : {}),
    },
  };
}

/** In-flight leases left once load stops (after giving stragglers time to settle). */
async function waitForIdle(routerUrl: string, tenant: string): Promise<number> {
  let inFlight = 0;
  for (let i = 0; i < 50; i++) {
    inFlight = (await gateStats(routerUrl, tenant)).inFlight;
    if (inFlight === 0) return 0;
    await new Promise((r) => setTimeout(r, 200));
  }
  return inFlight;
}

/** Prompt tokens the fleet's sims took and output tokens they generated, so far. */
async function simMeter(fleet: Fleet): Promise<{ prompt: number; output: number }> {
  let prompt = 0;
  let output = 0;
  for (let i = 0; i < fleet.specs.length; i++) {
    const s = await fleet.stats(i);
    prompt += s.promptTokens;
    output += s.tokens;
  }
  return { prompt, output };
}
