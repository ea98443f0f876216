// Lines of a cancelled batch that still wait for a slot stop at once; running ones finish. A
// consumer invocation watches the batches of its waiting lines, one read per batch every
// CANCEL_POLL_MS (not one per line), and aborts the waiting lines of a batch that is cancelling.
import { BatchStore } from "./batches";
import type { DetachedStop } from "../serve/detached";

export const CANCEL_POLL_MS = 1_000;

interface Watched extends DetachedStop {
  controller: AbortController;
}

export class CancelWatch {
  private readonly waiting = new Map<string, { tenant: string; batchId: string; lines: Set<Watched> }>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly db: D1Database) {}

  /** Runs a line of `batchId` with a stop the watch may pull; says whether it did. */
  async during<T>(tenant: string, batchId: string, run: (stop: DetachedStop) => Promise<T>): Promise<{ result: T; stopped: boolean }> {
    const controller = new AbortController();
    const watched: Watched = { signal: controller.signal, controller };
    const key = JSON.stringify([tenant, batchId]);
    let entry = this.waiting.get(key);
    if (!entry) this.waiting.set(key, (entry = { tenant, batchId, lines: new Set() }));
    entry.lines.add(watched);
    this.timer ??= setInterval(() => void this.check(), CANCEL_POLL_MS);
    try {
      const result = await run(watched);
      return { result, stopped: controller.signal.aborted };
    } finally {
      entry.lines.delete(watched);
      if (entry.lines.size === 0) this.waiting.delete(key);
    }
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  private async check(): Promise<void> {
    for (const { tenant, batchId, lines } of [...this.waiting.values()]) {
      const batch = await new BatchStore(this.db, tenant).get(batchId).catch(() => null);
      if (batch?.status !== "cancelling") continue;
      for (const line of lines) if (!line.started?.()) line.controller.abort();
    }
  }
}
