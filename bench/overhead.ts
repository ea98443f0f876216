// Scenario 1: overhead. 20-token streams at each concurrency level, through every system in turn
// (rounds alternate them, so drift over time hits them alike): TTFT, throughput, the router's CPU.
import { callOnce, pick, type CallResult } from "./load";
import { uniformCalls } from "./traffic";
import { round, summarize, type SystemRun } from "./summary";
import { createTenant, type Fleet } from "./stack";
import { configureFleet, measure, progress, type TargetList } from "./measure";

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
  await configureFleet(fleet, { failRate: 0, disconnectRate: 0, hangRate: 0, maxConcurrency: 5_000 });
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
