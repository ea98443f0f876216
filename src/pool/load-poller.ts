// Reads GPU servers' own account of their load (GET /metrics: core/backend-load.ts) every
// LOAD_POLL_MS while its owner is busy: a tenant gate for its own backends, a pool's gate for the
// pool's. A server that answers no metrics (404, or no gauges sluice knows) is asked again after a
// minute; one that does not answer within LOAD_TIMEOUT_MS keeps its last reading (which goes
// stale: core/tenant-policies.ts LOAD_FRESH_MS).
import { MAX_METRICS_BYTES, parseBackendLoad, type BackendLoad } from "./core/backend-load";

export const LOAD_POLL_MS = 2_000;
const LOAD_TIMEOUT_MS = 1_000;
/** The poller stops this long after its owner's last activity. */
const ACTIVE_MS = 10_000;
const NO_METRICS_RETRY_MS = 60_000;

export interface LoadSource {
  id: string;
  url: string;
  apiKey?: string;
}

/** A server's metrics: at its origin's /metrics, where vLLM, SGLang and TGI serve them. */
export function metricsUrl(backendUrl: string): string {
  return `${new URL(backendUrl).origin}/metrics`;
}

/** The backend's load; null when it has none to tell; undefined when it did not answer in time. */
export async function readBackendLoad(source: LoadSource): Promise<BackendLoad | null | undefined> {
  try {
    const headers: Record<string, string> = source.apiKey ? { authorization: `Bearer ${source.apiKey}` } : {};
    const res = await fetch(metricsUrl(source.url), { headers, redirect: "manual", signal: AbortSignal.timeout(LOAD_TIMEOUT_MS) });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      return res.status >= 500 ? undefined : null;
    }
    return parseBackendLoad(await boundedText(res.body)) ?? null;
  } catch {
    return undefined;
  }
}

/** The body as text, at most MAX_METRICS_BYTES of it (the rest is not read). */
async function boundedText(body: ReadableStream<Uint8Array>): Promise<string> {
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  while (size < MAX_METRICS_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    size += value.byteLength;
  }
  await reader.cancel().catch(() => {});
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

export class LoadPoller {
  private lastActivity = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly skipUntil = new Map<string, number>();

  constructor(
    /** The backends to read now. */
    private readonly sources: () => readonly LoadSource[],
    /** A reading: the load, or null for a server that has none. */
    private readonly report: (id: string, load: BackendLoad | null, at: number) => void,
  ) {}

  /** The owner is busy: read now if idle, and go on every LOAD_POLL_MS for ACTIVE_MS after the last call. */
  active(): void {
    this.lastActivity = Date.now();
    this.timer ??= setTimeout(() => void this.poll(), 0);
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.lastActivity = 0;
  }

  private async poll(): Promise<void> {
    const now = Date.now();
    const due = this.sources().filter((s) => (this.skipUntil.get(s.id) ?? 0) <= now);
    await Promise.all(
      due.map(async (s) => {
        const load = await readBackendLoad(s);
        if (load === undefined) return;
        if (load === null) this.skipUntil.set(s.id, now + NO_METRICS_RETRY_MS);
        else this.skipUntil.delete(s.id);
        this.report(s.id, load, Date.now());
      }),
    );
    // Forget servers no longer polled (a config changed), so the map stays as small as the sources.
    const ids = new Set(this.sources().map((s) => s.id));
    for (const id of [...this.skipUntil.keys()]) if (!ids.has(id)) this.skipUntil.delete(id);
    this.timer = Date.now() - this.lastActivity < ACTIVE_MS ? setTimeout(() => void this.poll(), LOAD_POLL_MS) : undefined;
  }
}
