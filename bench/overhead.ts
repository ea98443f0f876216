// Scenario 1: overhead. 20-token streams at each concurrency level, through every system in turn
// (rounds alternate them, so drift over time hits them alike): TTFT, throughput, the router's CPU;
// and sluice's CPU per request on each API it speaks.
import { callOnce, pick, type CallResult, type Target } from "./load";
import { uniformCalls } from "./traffic";
import { round, summarize, type SystemRun } from "./summary";
import { cpuPerCall, createTenant, type Fleet, type System } from "./stack";
import { configureFleet, NO_FAULTS, measure, progress, type TargetList } from "./measure";

export interface OverheadParams {
  levels: number[];
  /** Rounds per level. */
  rounds: Record<number, number>;
  /** Calls one after another at level 1. */
  serialCalls: number;
}

export async function overhead(
  fleet: Fleet,
  sluiceUrl: string,
  targets: (key: string, withFloor?: boolean) => TargetList,
  P: OverheadParams,
) {
  await configureFleet(fleet, { ...NO_FAULTS, maxConcurrency: 5_000 });
  const key = await createTenant(sluiceUrl, "overhead", fleet, { limits: { maxConcurrency: 5_000, maxQueue: 5_000 } });
  const out: Record<string, Record<string, SystemRun>> = {};
  for (const level of P.levels) {
    const runs: Record<
      string,
      {
        results: CallResult[];
        wallMs: number;
        attempts: number[];
        router: Array<{ cpuCores: number; rssMb: number }>;
        util: Array<[number, number]>;
      }
    > = {};
    const stop = progress(`overhead, ${level} concurrent 20-token streams`, () =>
      Object.values(runs).reduce((n, r) => n + r.results.length, 0),
    );
    for (let round_ = 0; round_ < P.rounds[level]!; round_++) {
      // Systems take turns within each round, so drift over time hits them alike.
      for (const { target, system } of targets(key, true)) {
        const name = pick(target, 0).name;
        const calls = uniformCalls(level === 1 ? P.serialCalls : level, 20, `oh-${level}-${round_}-${name}`);
        const m = await measure(
          system,
          fleet,
          async () => {
            if (level === 1) {
              const rs: CallResult[] = [];
              for (const [i, c] of calls.entries()) rs.push(await callOnce(pick(target, i), c));
              return rs;
            }
            return Promise.all(calls.map((c, i) => callOnce(pick(target, i), c)));
          },
          5_000 * fleet.specs.length,
        );
        const r = (runs[name] ??= { results: [], wallMs: 0, attempts: [], router: [], util: [] });
        r.results.push(...m.results);
        r.wallMs += m.wallMs;
        r.attempts.push(m.attemptsPerCall);
        if (m.router) r.router.push(m.router);
      }
    }
    stop();
    out[`c${level}`] = Object.fromEntries(
      Object.entries(runs).map(([name, r]) => [
        name,
        {
          system: name,
          summary: summarize(r.results, r.wallMs),
          attemptsPerCall: round(r.attempts.reduce((a, b) => a + b, 0) / r.attempts.length, 3),
          router: r.router.length
            ? { cpuCores: Math.max(...r.router.map((x) => x.cpuCores)), rssMb: Math.max(...r.router.map((x) => x.rssMb)) }
            : undefined,
          utilisation: [],
        },
      ]),
    );
  }
  return out;
}

/**
 * CPU per request on each API sluice speaks, against chat completions: the same 20-token streams
 * over /v1/chat/completions, /v1/messages and /v1/responses (`store: false`, so translation alone
 * is measured), at `concurrency`. A warm-up round, then `rounds` in which the surfaces take turns;
 * each surface's median.
 */
export async function surfaceCpu(
  sluice: System,
  target: Target,
  opts: { calls: number; concurrency: number; rounds: number },
  violations: string[],
): Promise<Record<"chat" | "messages" | "responses", number>> {
  const surfaces = ["chat", "messages", "responses"] as const;
  const samples: Record<string, number[]> = { chat: [], messages: [], responses: [] };
  const stop = progress(`overhead, CPU per request per surface (${opts.concurrency} concurrent 20-token streams)`, () =>
    Object.values(samples).reduce((n, s) => n + s.length * opts.calls, 0),
  );
  for (let round_ = 0; round_ <= opts.rounds; round_++) {
    for (const surface of surfaces) {
      const m = await cpuPerCall(sluice, { ...target, surface }, { ...opts, tokens: 20, tag: `cpu-${surface}-${round_}` });
      if (round_ > 0) samples[surface]!.push(m.msPerCall);
      // CPU per request means something only for requests answered in full.
      if (m.exact < opts.calls) violations.push(`overhead over /v1/${surface}: ${opts.calls - m.exact} of ${opts.calls} calls not exact`);
    }
  }
  stop();
  return Object.fromEntries(surfaces.map((s) => [s, round(median(samples[s]!), 3)])) as Record<(typeof surfaces)[number], number>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A system's CPU per request split into what every request costs and what each token adds. */
export interface CpuSplit {
  fixedMs: number;
  perTokenMs: number;
}

/**
 * The fixed part of each system's CPU per request: the same streams with 1 token and with 21, at
 * `concurrency`; per token is the difference over 20, fixed is the 1-token cost less one token. A
 * warm-up round, then `rounds` in which the systems take turns; each figure a median.
 */
export async function fixedCpu(
  systems: Array<{ system: System; target: Target }>,
  opts: { calls: number; concurrency: number; rounds: number },
  violations: string[],
): Promise<Record<string, CpuSplit>> {
  const samples = new Map<string, { one: number[]; many: number[] }>();
  const stop = progress(`overhead, fixed CPU per request (${opts.concurrency} concurrent streams of 1 and 21 tokens)`, () =>
    [...samples.values()].reduce((n, s) => n + (s.one.length + s.many.length) * opts.calls, 0),
  );
  for (let round_ = 0; round_ <= opts.rounds; round_++) {
    for (const { system, target } of systems) {
      const s = samples.get(target.name) ?? { one: [], many: [] };
      samples.set(target.name, s);
      for (const tokens of [1, 21]) {
        const m = await cpuPerCall(system, target, { ...opts, tokens, tag: `fixed-${target.name}-${tokens}-${round_}` });
        if (m.exact < opts.calls) violations.push(`fixed CPU of ${target.name}: ${opts.calls - m.exact} of ${opts.calls} calls not exact`);
        if (round_ > 0) (tokens === 1 ? s.one : s.many).push(m.msPerCall);
      }
    }
  }
  stop();
  return Object.fromEntries(
    [...samples].map(([name, s]) => {
      const one = median(s.one);
      const perToken = (median(s.many) - one) / 20;
      return [name, { fixedMs: round(one - perToken, 3), perTokenMs: round(perToken, 4) }];
    }),
  );
}
