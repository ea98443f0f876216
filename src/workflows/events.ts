// A run's events as SSE (GET /v1/workflows/runs/{id}/events): each event once, in order, with its
// sequence number as its id, so a client that reconnects with Last-Event-ID misses nothing. The
// stream follows the run (D1 read every POLL_MS) and ends after the run's last event, or after
// MAX_STREAM_MS: reconnecting with Last-Event-ID carries on.
import { ENDED_RUN } from "./core/run-state";
import type { WorkflowStore } from "./store";

export const POLL_MS = 500;
export const MAX_STREAM_MS = 10 * 60_000;
const PAGE = 100;
/** A comment line this often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

export function runEvents(store: WorkflowStore, runId: string, afterSeq: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const started = Date.now();
  let seq = afterSeq;
  let lastWrite = Date.now();
  let stopped = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (stopped) return;
        const events = await store.events(runId, seq, PAGE);
        if (events.length > 0) {
          const text = events.map((e) => `id: ${e.seq}\nevent: ${String(e.event.type)}\ndata: ${JSON.stringify(e.event)}\n\n`).join("");
          seq = events.at(-1)!.seq;
          lastWrite = Date.now();
          controller.enqueue(encoder.encode(text));
          return;
        }
        const status = await store.runStatus(runId);
        if (
          status === null ||
          (ENDED_RUN.has(status) && (await store.events(runId, seq, 1)).length === 0) ||
          Date.now() - started > MAX_STREAM_MS
        ) {
          controller.close();
          return;
        }
        if (Date.now() - lastWrite >= KEEPALIVE_MS) {
          lastWrite = Date.now();
          controller.enqueue(encoder.encode(": keepalive\n\n"));
          return;
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    },
    cancel() {
      stopped = true;
    },
  });
}
