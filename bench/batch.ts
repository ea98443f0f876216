// Scenario: a batch beside interactive traffic. Interactive clients run at half the backends'
// capacity without a batch (the baseline), then a batch is submitted and they run at half capacity
// and at full capacity beside it. Reported: interactive TTFT in each phase (goal: within 10% of the
// baseline), backend utilisation while the batch has lines left (goal: at least 95%), batch lines
// a minute, duplicate generations and lost lines (goal: none of either), and lines whose text is not
// the sim's deterministic one.
import { closedLoop, MODEL, type Target } from "./load";
import { round, summarize, type Percentiles } from "./summary";
import { uniformCalls } from "./traffic";
import { ADMIN_TOKEN, createPool, createPoolTenant, createTenant, type Fleet } from "./stack";
import { ProcessCpu } from "./process-cpu";
import { expectedText } from "../sim/text";

export interface BatchRun {
  lines: number;
  /** Interactive TTFT (ms) per phase. */
  ttftMs: { baseline: Percentiles; halfWithBatch: Percentiles; fullWithBatch: Percentiles };
  /** Mean backend utilisation from the batch's submission to its last line. */
  utilisationWithBatch: number;
  linesPerMinute: number;
  completed: number;
  failed: number;
  /** Upstream generations for batch lines beyond one a line. */
  duplicates: number;
  /** Lines neither in the output nor in the error file. */
  lost: number;
  /** Output lines whose text is not the sim's. */
  wrongText: number;
  status: string;
  /** Means of what the watcher sampled (every 250 ms) in each phase with the batch: where the slots went. */
  sampled: Record<"half" | "full", PhaseSample>;
  /** CPU of the router's workerd in the baseline phase, in cores (compare sampled.*.routerCores). */
  baselineRouterCores: number;
}

/** Mean slots in use: upstream at the sims (active, and waiting for a sim slot), and in the tenant's gate. */
interface PhaseSample {
  samples: number;
  simActive: number;
  simWaiting: number;
  gateInFlight: number;
  gateBackground: number;
  gateQueued: number;
  /** Of gateQueued: background work waiting for a slot. */
  gateQueuedBackground: number;
  /** CPU the router's workerd processes used, in cores (1 = one core busy the whole time). */
  routerCores: number;
  /** Slots in flight per backend, as the gate counts them (each backend's mean). */
  gateByBackend: Record<string, number>;
}

const SLOTS_PER_SIM = 16;

export async function batchScenario(
  fleet: Fleet,
  sluiceUrl: string,
  /** `pool`: the tenant's backends are a shared pool's fleet backends (README, "Shared pools"), not its own. */
  options: { lines: number; phaseMs: number; pool?: string },
  log: (line: string) => void,
  violations: string[],
): Promise<BatchRun> {
  const capacity = SLOTS_PER_SIM * fleet.specs.length;
  for (let i = 0; i < fleet.specs.length; i++) await fleet.control(i, { failRate: 0, disconnectRate: 0, maxConcurrency: SLOTS_PER_SIM });
  // limits.background is left at its default: half the slots.
  const limits = { limits: { maxConcurrency: capacity + 2 * fleet.specs.length, maxQueue: 5_000, maxQueueWaitMs: 60_000 } };
  const tenant = options.pool ? "batchpool" : "batchmix";
  const key = options.pool
    ? await createPoolTenant(sluiceUrl, tenant, options.pool, await createPool(sluiceUrl, options.pool, fleet, SLOTS_PER_SIM + 2), limits)
    : await createTenant(sluiceUrl, tenant, fleet, limits, { maxConcurrency: SLOTS_PER_SIM + 2 });
  const v1 = (path: string, init: RequestInit = {}) =>
    fetch(`${sluiceUrl}/v1/${path}`, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.headers ?? {}) } });
  const target: Target = { name: "sluice", baseUrl: `${sluiceUrl}/v1`, headers: { authorization: `Bearer ${key}` }, model: "chat" };
  const interactive = async (workers: number, tag: string) => {
    const sessions = uniformCalls(100_000, 40, tag).map((c, i) => ({ id: `${tag}-${i}`, calls: [c] }));
    return closedLoop(target, sessions, workers, options.phaseMs);
  };
  const upstream = async () => {
    let n = 0;
    for (let i = 0; i < fleet.specs.length; i++) n += (await fleet.stats(i)).requests;
    return n;
  };

  log(`batch: baseline, ${capacity / 2} interactive clients for ${capacity} GPU slots`);
  const routerCpu = new ProcessCpu("workerd");
  const baseline = await interactive(capacity / 2, "bl");
  const baselineCores = round(routerCpu.cores(), 2);

  const questions = Array.from({ length: options.lines }, (_, i) => [{ role: "user", content: `batch line ${i}` }]);
  const jsonl = questions
    .map((messages, i) =>
      JSON.stringify({
        custom_id: `l${i}`,
        method: "POST",
        url: "/v1/chat/completions",
        body: { model: "chat", messages, max_tokens: 40 },
      }),
    )
    .join("\n");
  const form = new FormData();
  form.set("purpose", "batch");
  form.set("file", new File([jsonl], "lines.jsonl"));
  const file = (await (await v1("files", { method: "POST", body: form })).json()) as { id: string };
  const before = await upstream();
  const submittedAt = Date.now();
  const created = (await (
    await v1("batches", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
    })
  ).json()) as { id: string };
  let batch: any = created;
  let done = false;
  const utilisation: number[] = [];
  let phase: "half" | "full" | null = "half";
  const samples: Record<"half" | "full", Omit<PhaseSample, "samples">[]> = { half: [], full: [] };
  const watching = (async () => {
    while (!done) {
      let active = 0;
      let waiting = 0;
      for (let i = 0; i < fleet.specs.length; i++) {
        const stats = await fleet.stats(i);
        active += stats.active;
        waiting += stats.waiting;
      }
      const gate = (await (
        await fetch(`${sluiceUrl}/admin/tenants/${tenant}/stats`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
      ).json()) as {
        inFlight: number;
        backgroundInFlight: number;
        queue: { depth: number; byPriority: { background: number } };
        backends: Array<{ id: string; inFlight: number }>;
      };
      const cores = routerCpu.cores();
      batch = await (await v1(`batches/${created.id}`)).json();
      done = !["validating", "in_progress", "finalizing"].includes(batch.status);
      // While lines are left to run (finalizing writes files: no generation is left).
      if (batch.status === "in_progress") {
        utilisation.push(Math.min(1, active / capacity));
        if (phase)
          samples[phase].push({
            simActive: active,
            simWaiting: waiting,
            gateInFlight: gate.inFlight,
            gateBackground: gate.backgroundInFlight,
            gateQueued: gate.queue.depth,
            gateQueuedBackground: gate.queue.byPriority.background,
            routerCores: cores,
            gateByBackend: Object.fromEntries(gate.backends.map((b) => [b.id, b.inFlight])),
          });
      }
      if (!done) await new Promise((r) => setTimeout(r, 250));
    }
  })();

  log(`batch: ${options.lines} lines submitted; ${capacity / 2} interactive clients beside it`);
  const half = await interactive(capacity / 2, "hb");
  phase = "full";
  log(`batch: ${capacity} interactive clients beside it`);
  const full = await interactive(capacity, "fb");
  phase = null;
  const interactiveCalls = half.length + full.length;
  // At most 10 minutes; the timer is cleared, or it would keep the benchmark's process alive that long.
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([watching, new Promise((r) => (timer = setTimeout(r, 600_000)))]);
  clearTimeout(timer);
  done = true;
  const finishedAt = Date.now();
  const batchUpstream = (await upstream()) - before - interactiveCalls;

  const output = batch.output_file_id ? (await (await v1(`files/${batch.output_file_id}/content`)).text()).trim().split("\n") : [];
  const errors = batch.error_file_id ? (await (await v1(`files/${batch.error_file_id}/content`)).text()).trim().split("\n") : [];
  let wrongText = 0;
  for (const line of output.filter((l) => l !== "")) {
    const o = JSON.parse(line);
    const i = Number(o.custom_id.slice(1));
    const text = o.response.body.choices[0].message.content;
    if (text !== expectedText({ model: MODEL, messages: questions[i]!, maxTokens: 40 })) wrongText++;
  }
  const completed = batch.request_counts?.completed ?? 0;
  const failed = batch.request_counts?.failed ?? 0;
  const run: BatchRun = {
    lines: options.lines,
    ttftMs: {
      baseline: summarize(baseline, options.phaseMs).ttftMs,
      halfWithBatch: summarize(half, options.phaseMs).ttftMs,
      fullWithBatch: summarize(full, options.phaseMs).ttftMs,
    },
    utilisationWithBatch: utilisation.length ? round(utilisation.reduce((a, b) => a + b, 0) / utilisation.length, 3) : 0,
    linesPerMinute: round((completed + failed) / ((finishedAt - submittedAt) / 60_000), 1),
    completed,
    failed,
    // Interactive calls make one upstream request each here (no faults): the rest are the batch's.
    duplicates: Math.max(0, batchUpstream - options.lines),
    lost: options.lines - output.filter((l) => l !== "").length - errors.filter((l) => l !== "").length,
    wrongText,
    status: batch.status,
    sampled: { half: meanOf(samples.half), full: meanOf(samples.full) },
    baselineRouterCores: baselineCores,
  };
  log(`batch: router CPU in the baseline ${baselineCores} cores`);
  for (const p of ["half", "full"] as const) log(`batch: sampled (${p} capacity) ${JSON.stringify(run.sampled[p])}`);
  if (run.status !== "completed") violations.push(`batch: ended ${run.status}, not completed`);
  if (run.lost > 0) violations.push(`batch: ${run.lost} lines lost`);
  if (run.wrongText > 0) violations.push(`batch: ${run.wrongText} lines with the wrong text`);
  if (run.duplicates > 0) violations.push(`batch: ${run.duplicates} duplicate generations`);
  return run;
}

function meanOf(samples: Omit<PhaseSample, "samples">[]): PhaseSample {
  const mean = (f: (s: Omit<PhaseSample, "samples">) => number) =>
    samples.length ? round(samples.reduce((a, s) => a + f(s), 0) / samples.length, 1) : 0;
  return {
    samples: samples.length,
    simActive: mean((s) => s.simActive),
    simWaiting: mean((s) => s.simWaiting),
    gateInFlight: mean((s) => s.gateInFlight),
    gateBackground: mean((s) => s.gateBackground),
    gateQueued: mean((s) => s.gateQueued),
    gateQueuedBackground: mean((s) => s.gateQueuedBackground),
    routerCores: round(samples.length ? samples.reduce((a, s) => a + s.routerCores, 0) / samples.length : 0, 2),
    gateByBackend: Object.fromEntries(
      Object.keys(samples[0]?.gateByBackend ?? {}).map((id) => [id, mean((s) => s.gateByBackend[id] ?? 0)]),
    ),
  };
}
