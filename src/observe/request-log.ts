// One JSON line per request, written once when it ends: what happened to it, where and how long
// it took, attempt by attempt. Workers Logs index its fields; `npm run dev` prints it as one
// readable line. It never holds prompt or completion text. A request whose answer streams on after
// the handler returned (chat) is deferred: the relay writes the line when the stream ends.
import type { AttemptLogEntry } from "../dispatch/dispatch-input";
import type { RouteReason } from "../gate/core/route-reason";

/**
 * complete: answered in full; partial: the stream ended with an error event after some tokens;
 * failed: no answer (an error status); cancelled: the client left; stale: answered from a stored
 * answer because every backend failed; rejected: refused before any backend was called;
 * replayed / joined: answered from the journal, or by following a twin's generation.
 */
export type RequestOutcome = "complete" | "partial" | "failed" | "cancelled" | "stale" | "rejected" | "replayed" | "joined";

export interface AttemptLine {
  attempt: number;
  backend: string;
  region?: string;
  /** Why it went to that backend (gate/core/route-reason.ts). */
  route?: RouteReason;
  continuation: boolean;
  outcome: AttemptLogEntry["outcome"];
  code?: string;
  httpStatus?: number;
  ms: number;
  /** Chunks relayed by this attempt (one per completion token). */
  chunks: number;
  /** The attempt's span in the trace (the backend's parent span). */
  spanId?: string;
}

export interface RequestLine {
  level: "info" | "warn";
  msg: "request";
  requestId: string;
  /** The W3C trace id (x-sluice-trace-id). */
  traceId: string;
  method: string;
  path: string;
  /** The API the client spoke: "chat", "messages", "responses", "embeddings" (client requests of those routes only). */
  surface?: string;
  tenant?: string;
  model?: string;
  priority?: string;
  outcome: RequestOutcome;
  /** The HTTP status the client got (200 for a stream that then ended with an error event). */
  status: number;
  code?: string;
  queueMs?: number;
  ttftMs?: number;
  totalMs: number;
  promptTokens?: number;
  completionTokens?: number;
  /** The API key's name (its id when it has none). */
  apiKey?: string;
  /** What the request's attempts cost in US dollars, served and wasted (README, "Spend and budgets"). */
  costUsd?: number;
  /** Some attempt's usage was sluice's estimate: the backend reported none. */
  costEstimated?: true;
  /** The backend whose answer the client got (the last attempt's). */
  backend?: string;
  attempts: AttemptLine[];
}

/** Status for a client that left before any response started (nginx's convention). */
export const CLIENT_CLOSED = 499;

type Details = Partial<
  Pick<
    RequestLine,
    | "surface"
    | "tenant"
    | "model"
    | "priority"
    | "queueMs"
    | "promptTokens"
    | "completionTokens"
    | "backend"
    | "apiKey"
    | "costUsd"
    | "costEstimated"
  >
>;

export class RequestLog {
  private details: Details = {};
  private attempts: AttemptLine[] = [];
  private firstTokenAt: number | undefined;
  private written = false;
  /** Set when the line will be written after the handler returned (see `defer`). */
  deferred = false;

  constructor(
    readonly requestId: string,
    private readonly traceId: string,
    private readonly method: string,
    private readonly path: string,
    private readonly startedAt: number,
    private readonly write: (line: RequestLine) => void = writeLine,
  ) {}

  set(details: Details): void {
    Object.assign(this.details, details);
  }

  /** The first token reached the client (the first only counts). */
  firstToken(now: number): void {
    this.firstTokenAt ??= now;
  }

  addAttempts(entries: AttemptLogEntry[], regionOf: (backend: string) => string | undefined): void {
    for (const e of entries) {
      this.attempts.push({
        attempt: e.attempt,
        backend: e.backendId,
        region: regionOf(e.backendId),
        route: e.route,
        continuation: e.continuation,
        outcome: e.outcome,
        code: e.errorCode,
        httpStatus: e.httpStatus,
        ms: e.durationMs,
        chunks: e.chunks,
        spanId: e.spanId,
      });
    }
  }

  /** The line is written later, by whoever called this, with `end`. */
  defer(): void {
    this.deferred = true;
  }

  /** Writes the line (once: a second call is ignored) and returns it. */
  end(outcome: RequestOutcome, status: number, code: string | undefined, now: number): RequestLine | undefined {
    if (this.written) return undefined;
    this.written = true;
    const line: RequestLine = {
      level: status >= 500 || outcome === "partial" ? "warn" : "info",
      msg: "request",
      requestId: this.requestId,
      traceId: this.traceId,
      method: this.method,
      path: this.path,
      ...this.details,
      outcome,
      status,
      code,
      ttftMs: this.firstTokenAt === undefined ? undefined : this.firstTokenAt - this.startedAt,
      totalMs: now - this.startedAt,
      attempts: this.attempts,
    };
    this.write(line);
    return line;
  }
}

/** The default writer: the line, as JSON, to the log (Workers Logs). */
export function writeLine(line: RequestLine): void {
  console.log(JSON.stringify(line));
}

/** The outcome of a request that ended with `status` and no more detail (a plain route, an early refusal). */
export function outcomeOfStatus(status: number): RequestOutcome {
  if (status >= 500) return "failed";
  return status >= 400 ? "rejected" : "complete";
}
