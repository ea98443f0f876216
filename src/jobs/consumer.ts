// The jobs queue's consumers (wrangler.toml: sluice-jobs and its dead-letter queue). Three kinds of
// message move a batch along:
//   start    queues the batch's lines, LINES_PER_START at a time (then a start for the rest)
//   line     runs one line (line.ts) and records its result; the last result queues a finalize
//   finalize writes the output and error files and gives the batch its final state
// Each is safe to deliver twice: states move by conditional updates, a line's result is recorded
// once, and a line runs under its own journal key. A line that failed with what a later try may
// cure (a full queue, every backend down) is retried by the queue; after max_retries the
// dead-letter consumer records it as failed, and as a dead letter of the tenant.
import type { Env } from "../env";
import { readTenantConfig } from "../config/store";
import { recordGaveUp } from "./gave-up";
import { logError } from "../log";
import { parseBatchLine } from "./batch-input";
import { chatRequestOf, runBatchLine } from "./batch-line";
import { type BatchObject, BatchStore } from "./batches";
import { FileStore } from "./files";
import { RETRYABLE, generate, generationGaveUp } from "./generate";
import { CancelWatch } from "./cancel-watch";
import type { JobMessage } from "./messages";

/** Lines queued by one start message (sendBatch takes 100 at a time). */
export const LINES_PER_START = 500;
/** Delay before a retried job's next delivery: doubles per delivery, from JOB_RETRY_DELAY_SECONDS (default 2), up to 5 minutes. */
const retryDelay = (env: Env, attempts: number) => {
  const base = Number(env.JOB_RETRY_DELAY_SECONDS ?? "2");
  return Math.min(300, (Number.isFinite(base) && base >= 0 ? base : 2) * 2 ** (attempts - 1));
};

type Verdict = "done" | "retry";

export async function runJobs(batch: MessageBatch<JobMessage>, env: Env): Promise<void> {
  const watch = new CancelWatch(env.DB);
  await Promise.all(
    batch.messages.map(async (message) => {
      let verdict: Verdict;
      try {
        verdict = await runJob(message.body, env, watch);
      } catch (err) {
        logError(undefined, "job failed; the queue will retry it", err, { job: message.body.kind, tenant: message.body.tenant });
        verdict = "retry";
      }
      if (verdict === "done") message.ack();
      else message.retry({ delaySeconds: retryDelay(env, message.attempts) });
    }),
  ).finally(() => watch.close());
}

function runJob(job: JobMessage, env: Env, watch: CancelWatch): Promise<Verdict> {
  if (job.kind === "generate") return generate(job, env);
  const batches = new BatchStore(env.DB, job.tenant);
  const files = new FileStore(env.DB, env.FILES, job.tenant);
  if (job.kind === "start") return start(job, env, batches, files);
  if (job.kind === "line") return line(job, env, batches, files, watch);
  return finalize(job.batchId, batches, files);
}

async function start(job: Extract<JobMessage, { kind: "start" }>, env: Env, batches: BatchStore, files: FileStore): Promise<Verdict> {
  const batch = await batches.get(job.batchId);
  if (!batch || !["validating", "in_progress", "cancelling"].includes(batch.status)) return "done";
  const index = await files.index(batch.input_file_id);
  if (!index) {
    await batches.fail(
      batch.id,
      { code: "input_file_missing", message: `The input file ${batch.input_file_id} was deleted before the batch ran.` },
      Date.now(),
    );
    return "done";
  }
  const end = Math.min(index.offsets.length, job.from + LINES_PER_START);
  const lines: JobMessage[] = [];
  for (let i = job.from; i < end; i++) {
    const [offset, length] = index.offsets[i]!;
    lines.push({ kind: "line", tenant: job.tenant, batchId: batch.id, line: i, customId: index.customIds[i]!, offset, length });
  }
  for (let i = 0; i < lines.length; i += 100)
    await env.JOBS.sendBatch(lines.slice(i, i + 100).map((body) => ({ body, contentType: "json" })));
  await batches.started(batch.id, Date.now());
  if (end < index.offsets.length) await env.JOBS.send({ ...job, from: end }, { contentType: "json" });
  return "done";
}

async function line(
  job: Extract<JobMessage, { kind: "line" }>,
  env: Env,
  batches: BatchStore,
  files: FileStore,
  watch: CancelWatch,
): Promise<Verdict> {
  const batch = await batches.get(job.batchId);
  if (!batch || !["in_progress", "cancelling"].includes(batch.status) || (await batches.hasLine(batch.id, job.line))) return "done";
  const failed = (code: string, message: string) => ({
    id: `batch_req_${job.batchId}_${job.line}`,
    custom_id: job.customId,
    response: null,
    error: { code, message },
  });
  const now = Date.now();
  if (batch.status === "cancelling")
    return record(env, batches, batch, job, false, failed("batch_cancelled", "The batch was cancelled before this line ran."));
  if (now >= batch.expires_at * 1000)
    return record(env, batches, batch, job, false, failed("batch_expired", "The batch's completion window ended before this line ran."));
  const config = await readTenantConfig(env, job.tenant);
  const text = await files.slice(batch.input_file_id, job.offset, job.length);
  if (!config) return "done"; // the tenant was deleted
  if (text === null) return record(env, batches, batch, job, false, failed("input_file_missing", "The batch's input file was deleted."));
  const work = { tenant: job.tenant, key: `${batch.id}:${job.line}`, job: `batch ${batch.id} line ${job.line}` };
  const run = await watch.during(job.tenant, batch.id, (stop) => runBatchLine(env, config, parseBatchLine(text), work, stop));
  if (run.stopped)
    return record(env, batches, batch, job, false, failed("batch_cancelled", "The batch was cancelled while this line waited for a slot."));
  const answer = run.result;
  if (RETRYABLE.has(answer.status)) return "retry";
  const ok = answer.status >= 200 && answer.status < 300;
  const result = {
    id: `batch_req_${job.batchId}_${job.line}`,
    custom_id: job.customId,
    response: { status_code: answer.status, request_id: answer.requestId, body: answer.body },
    error: null,
  };
  return record(env, batches, batch, job, ok, result);
}

/** Records a line's result; the line that completes the batch queues its finalize. */
async function record(
  env: Env,
  batches: BatchStore,
  batch: BatchObject,
  job: { tenant: string; line: number },
  ok: boolean,
  result: unknown,
): Promise<Verdict> {
  await batches.recordLine(batch.id, job.line, ok, result);
  if (await batches.beginFinalizing(batch.id, Date.now()))
    await env.JOBS.send({ kind: "finalize", tenant: job.tenant, batchId: batch.id }, { contentType: "json" });
  return "done";
}

async function finalize(batchId: string, batches: BatchStore, files: FileStore): Promise<Verdict> {
  const batch = await batches.get(batchId);
  if (batch?.status !== "finalizing") return "done";
  const lines = await batches.lines(batchId);
  const jsonl = (ok: boolean) =>
    new TextEncoder().encode(
      lines
        .filter((l) => l.ok === ok)
        .map((l) => `${l.result}\n`)
        .join(""),
    );
  const now = Date.now();
  const write = async (ok: boolean, suffix: string) => {
    const bytes = jsonl(ok);
    if (bytes.length === 0) return null;
    const count = lines.filter((l) => l.ok === ok).length;
    // Ids of the batch's own: a redelivered finalize writes the same files again.
    const id = `file-${batchId.slice("batch_".length)}${suffix}`;
    await files.create({ filename: `${batchId}_${suffix}.jsonl`, purpose: "batch_output", bytes, lines: count }, now, id);
    return id;
  };
  const output = await write(true, "output");
  const error = await write(false, "error");
  const expired = lines.some((l) => !l.ok && l.result.includes('"code":"batch_expired"'));
  const status = batch.cancelling_at !== null ? "cancelled" : expired ? "expired" : "completed";
  await batches.finish(batchId, status, { output, error }, now);
  return "done";
}

/**
 * The dead-letter queue's consumer: a line that kept failing is recorded as failed and as a dead
 * letter (with its request, so it can be run again); a generation ends failed likewise; a batch
 * whose start or finalize step kept failing is marked failed.
 */
export async function runDeadJobs(batch: MessageBatch<JobMessage>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    const job = message.body;
    try {
      if (job.kind === "generate") await generationGaveUp(job, env);
      else if (job.kind === "line") await lineGaveUp(job, env);
      else
        await new BatchStore(env.DB, job.tenant).fail(
          job.batchId,
          { code: "batch_stalled", message: `The batch's ${job.kind} step failed every delivery.` },
          Date.now(),
        );
      logError(undefined, "job dead-lettered", job.kind, { tenant: job.tenant });
      message.ack();
    } catch (err) {
      logError(undefined, "dead job not recorded; the queue will retry", err, { tenant: job.tenant, job: job.kind });
      message.retry();
    }
  }
}

async function lineGaveUp(job: Extract<JobMessage, { kind: "line" }>, env: Env): Promise<void> {
  const batches = new BatchStore(env.DB, job.tenant);
  const current = await batches.get(job.batchId);
  if (!current) return;
  const why = "The line failed every delivery the jobs queue tried (its backends kept failing, or the tenant's queue stayed full).";
  const text = await new FileStore(env.DB, env.FILES, job.tenant).slice(current.input_file_id, job.offset, job.length);
  const line = text === null ? undefined : parseBatchLine(text);
  const request = line && chatRequestOf(line);
  const requestId = `${job.batchId}:${job.line}`;
  await recordGaveUp(env, {
    tenant: job.tenant,
    requestId,
    model: line?.body.model ?? "batch",
    code: "line_failed",
    message: why,
    request,
  });
  const result = {
    id: `batch_req_${job.batchId}_${job.line}`,
    custom_id: job.customId,
    response: null,
    error: { code: "line_failed", message: why },
  };
  await record(env, batches, current, job, false, result);
}
