// Scenario: a multi-step agent workflow under faults. `runs` runs at once of planner -> three
// retrievers (map, minSuccesses 2) -> summarizer -> effect, on sims failing 20% of calls before the
// first token and cutting 5% of streams mid-way; once through sluice's workflows, once as a naive
// chain (each step a direct streamed call, any failure fails the run). Reported for each: runs
// completed fully, partially, failed; LLM calls per run; effect calls per run (goal: exactly one per
// run that reached it); end-to-end p50/p99.
import pLimit from "p-limit";
import { ADMIN_TOKEN, createTenant, type Fleet } from "./stack";
import { MODEL } from "./load";
import { percentiles, round, type Percentiles } from "./summary";
import { readSse } from "../test/support/sse-transcript";
import { WebhookReceiver } from "../sim/webhook-receiver";
import { ProcessCpu } from "./process-cpu";

export interface ChainRun {
  runs: number;
  completed: number;
  partial: number;
  failed: number;
  llmCallsPerRun: number;
  /** Effect calls per run that reached its effect step. */
  effectCallsPerRun: number;
  /** Effect calls beyond one per idempotency key (sluice) or per run (naive). */
  repeatedEffects: number;
  endToEndMs: Percentiles;
  /** Why runs failed: the commonest errors (numbers and ids blurred), with how many runs each. */
  errors: Record<string, number>;
  /** CPU of the router's workerd while the runs ran, in cores (sluice only). */
  routerCores?: number;
}

/** The commonest of `errors`, numbers and ids replaced by #, at most five. */
function commonest(errors: string[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const e of errors) {
    const key = e.replace(/\b(wfr_[0-9a-f]+|\d+)\b/g, "#").slice(0, 160);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).slice(0, 5));
}

export interface WorkflowBench {
  sluice: ChainRun;
  naive: ChainRun;
}

const QUESTION_PROMPT = "Plan three questions about";

function definition(effectUrl: string) {
  return {
    steps: [
      {
        id: "plan",
        kind: "llm",
        model: "chat",
        messages: [{ role: "user", content: `${QUESTION_PROMPT} {{input.topic}}` }],
        output: { format: "json", required: ["questions"] },
      },
      {
        id: "retrieve",
        kind: "map",
        needs: ["plan"],
        over: "steps.plan.questions",
        minSuccesses: 2,
        concurrency: 3,
        model: "chat",
        messages: [{ role: "user", content: "Answer briefly: {{item}}" }],
      },
      {
        id: "summarize",
        kind: "llm",
        needs: ["retrieve"],
        model: "chat",
        messages: [{ role: "user", content: "Summarize: {{steps.retrieve}}" }],
      },
      {
        id: "publish",
        kind: "effect",
        needs: ["summarize"],
        url: effectUrl,
        body: '{"topic": {{input.topic}}, "summary": {{steps.summarize}}}',
      },
    ],
  };
}

export async function workflowScenario(
  fleet: Fleet,
  sluiceUrl: string,
  options: { runs: number },
  log: (line: string) => void,
  violations: string[],
): Promise<WorkflowBench> {
  const receiver = new WebhookReceiver();
  const port = await receiver.listen();
  try {
    for (let i = 0; i < fleet.specs.length; i++)
      await fleet.control(i, { failRate: 0.2, failStatus: 503, disconnectRate: 0.05, holdNew: "" });
    const upstream = async () => {
      let n = 0;
      for (let i = 0; i < fleet.specs.length; i++) n += (await fleet.stats(i)).requests;
      return n;
    };

    let before = await upstream();
    log(`workflow: ${options.runs} runs through sluice`);
    const cpu = new ProcessCpu("workerd");
    const sluice = await throughSluice(fleet, sluiceUrl, options.runs, `http://127.0.0.1:${port}/hooks/sluice`, receiver);
    sluice.routerCores = round(cpu.cores(), 2);
    sluice.llmCallsPerRun = round(((await upstream()) - before) / options.runs, 2);

    before = await upstream();
    log(`workflow: ${options.runs} naive chains`);
    const naive = await naiveChains(fleet, options.runs, `http://127.0.0.1:${port}/hooks/naive`, receiver);
    naive.llmCallsPerRun = round(((await upstream()) - before) / options.runs, 2);
    for (const [name, run] of Object.entries({ sluice, naive })) log(`workflow: ${name}'s failed runs: ${JSON.stringify(run.errors)}`);
    log(`workflow: the router's CPU while the runs ran: ${sluice.routerCores} cores`);
    if (sluice.repeatedEffects > 0) violations.push(`workflow: ${sluice.repeatedEffects} effects applied more than once`);
    if (sluice.completed + sluice.partial + sluice.failed !== options.runs) violations.push("workflow: runs that never ended");
    return { sluice, naive };
  } finally {
    for (let i = 0; i < fleet.specs.length; i++) await fleet.control(i, { failRate: 0, disconnectRate: 0 });
    await receiver.close();
  }
}

async function throughSluice(
  fleet: Fleet,
  sluiceUrl: string,
  runs: number,
  effectUrl: string,
  receiver: WebhookReceiver,
): Promise<ChainRun> {
  const key = await createTenant(sluiceUrl, "wfbench", fleet, {
    limits: { maxConcurrency: 2_000, maxQueue: 5_000, maxQueueWaitMs: 60_000 },
    // The chaos scenario's tuning (chaos.ts), for the same faults: a retry budget that covers a 25%
    // failure rate, and a breaker that trips on outages rather than on runs of bad luck.
    retry: { maxAttempts: 6, baseDelayMs: 20, budgetRatio: 0.6, budgetWindowMs: 10_000 },
    breaker: { failureRate: 0.5, minRequests: 10, windowMs: 5_000, cooldownMs: 2_000, maxCooldownMs: 8_000, consecutiveFailures: 8 },
    workflows: { effectHosts: ["127.0.0.1"], maxConcurrentRuns: 1_000 },
    outbound: { allowPrivateHosts: true },
  });
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
  const put = await fetch(`${sluiceUrl}/admin/tenants/wfbench/workflows/research`, {
    method: "PUT",
    headers: admin,
    body: JSON.stringify(definition(effectUrl)),
  });
  if (!put.ok) throw new Error(`workflow definition refused: ${await put.text()}`);
  const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
  const ids = await Promise.all(
    Array.from({ length: runs }, async (_, i) => {
      const res = await fetch(`${sluiceUrl}/v1/workflows/research/runs`, {
        method: "POST",
        headers,
        body: JSON.stringify({ input: { topic: `topic ${i}` } }),
      });
      if (res.status !== 201) throw new Error(`run not started: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    }),
  );
  const limit = pLimit(16);
  const ended = await Promise.all(
    ids.map((id) =>
      limit(async () => {
        // A connection workerd closes as it is reused fails the poll (see load.ts): poll again, up to 10 times in a row.
        for (let resets = 0; ; ) {
          const run = (await fetch(`${sluiceUrl}/v1/workflows/runs/${id}`, { headers }).then(
            (r) => r.json(),
            (err: unknown) => {
              if (++resets > 10) throw err;
              return null;
            },
          )) as any;
          if (run) resets = 0;
          if (run && ["completed", "partial", "failed", "cancelled"].includes(run.status)) return run;
          await new Promise((r) => setTimeout(r, 500));
        }
      }),
    ),
  );
  const effects = receiver.receivedAt(new URL(effectUrl).pathname);
  const applied = new Map<string, number>();
  for (const e of effects)
    if (e.status < 300) applied.set(e.headers["idempotency-key"]!, (applied.get(e.headers["idempotency-key"]!) ?? 0) + 1);
  const reached = ended.filter((r) => r.steps.some((s: any) => s.id === "publish" && s.status !== "not_run")).length;
  return {
    runs,
    completed: ended.filter((r) => r.status === "completed").length,
    partial: ended.filter((r) => r.status === "partial").length,
    failed: ended.filter((r) => r.status === "failed").length,
    llmCallsPerRun: 0,
    effectCallsPerRun: reached ? round(effects.length / reached, 2) : 0,
    repeatedEffects: [...applied.values()].reduce((a, n) => a + n - 1, 0),
    endToEndMs: percentiles(ended.map((r) => r.ended_at - r.created_at)),
    errors: commonest(ended.filter((r) => r.status === "failed").map((r) => r.error ?? "none")),
  };
}

/** The same DAG as a client would write it without a runner: direct streamed calls, any failure fails the run. */
async function naiveChains(fleet: Fleet, runs: number, effectUrl: string, receiver: WebhookReceiver): Promise<ChainRun> {
  let call = 0;
  const complete = async (content: string, json = false): Promise<string> => {
    const res = await fetch(`${fleet.url(call++ % fleet.specs.length)}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content }],
        stream: true,
        ...(json ? { response_format: { type: "json_object" } } : {}),
      }),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const transcript = await readSse(res);
    if (!transcript.done) throw new Error("stream cut");
    return transcript.text;
  };
  let reached = 0;
  const results = await Promise.all(
    Array.from({ length: runs }, async (_, i) => {
      const started = Date.now();
      try {
        const plan = JSON.parse(await complete(`${QUESTION_PROMPT} topic ${i}`, true)) as { questions: string[] };
        const answers = await Promise.all(plan.questions.map((q) => complete(`Answer briefly: ${q}`)));
        const summary = await complete(`Summarize: ${JSON.stringify(answers)}`);
        reached++;
        const effect = await fetch(`${effectUrl}-${i}`, { method: "POST", body: JSON.stringify({ topic: `topic ${i}`, summary }) });
        if (!effect.ok) throw new Error(`effect HTTP ${effect.status}`);
        return { ok: true, ms: Date.now() - started };
      } catch (err) {
        return { ok: false, ms: Date.now() - started, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
  const effects = Array.from({ length: runs }, (_, i) => receiver.receivedAt(`${new URL(effectUrl).pathname}-${i}`).length);
  return {
    runs,
    completed: results.filter((r) => r.ok).length,
    partial: 0,
    failed: results.filter((r) => !r.ok).length,
    llmCallsPerRun: 0,
    effectCallsPerRun: reached ? round(effects.reduce((a, n) => a + n, 0) / reached, 2) : 0,
    repeatedEffects: effects.reduce((a, n) => a + Math.max(0, n - 1), 0),
    endToEndMs: percentiles(results.filter((r) => r.ok).map((r) => r.ms)),
    errors: commonest(results.flatMap((r) => ("error" in r && r.error ? [r.error] : []))),
  };
}
