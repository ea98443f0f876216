// Hedged first tokens, the Worker's half (the gate decides when and where: gate/core/hedging.ts).
// An attempt with no first token after its grant's hedgeAfterMs asks the gate for a hedge; with one,
// the two race to a first token. The first to produce one goes on and the other is cancelled at
// once (its upstream call aborted, which stops its generation); one that fails first leaves the
// other to go on. The client sees one stream: nothing is relayed before a first token.
import type { AttemptGrant, AttemptReport, HedgeKept } from "../gate/core/protocol";
import { randomHex } from "../trace-context";
import { UpstreamAttempt, type UpstreamEvent } from "./attempt";
import { attemptLogEntry, type AttemptLogEntry, type DispatchInput } from "./dispatch-input";
import { sleep } from "./sleep";
import { AttemptError, failureOf } from "./upstream-error";
import { logError } from "../log";

/** One upstream attempt of the request, under its grant and its span in the trace. */
export interface Contender {
  grant: AttemptGrant;
  attempt: UpstreamAttempt;
  spanId: string;
}

/** The attempt the request follows, and what the race left behind. */
export interface Race {
  current: Contender;
  /** Attempts that lost or failed in the race, for the request's attempt log. */
  dropped: AttemptLogEntry[];
  /** Settles once the gate heard how the race ended: the winner's first token is told after it. */
  told: Promise<void>;
}

/** A fresh attempt on `grant`'s backend (not yet opened). */
export function contender(input: DispatchInput, grant: AttemptGrant, spanId = randomHex(8)): Contender {
  const { progress, signal } = input;
  const attempt = new UpstreamAttempt({
    grant,
    body: input.body,
    partialText: progress.text,
    deliveredTokens: progress.tokens,
    timeouts: input.timeouts,
    deadline: input.deadline,
    signal,
    readSizes: input.readSizes,
    trace: input.trace && { context: input.trace, spanId },
  });
  return { grant, attempt, spanId };
}

/** Opens the attempt and reads until its first token (or its end): every event read, in order. */
async function toFirstToken(attempt: UpstreamAttempt): Promise<UpstreamEvent[]> {
  await attempt.open();
  const events: UpstreamEvent[] = [];
  for (;;) {
    const read = await attempt.next();
    events.push(...read);
    if (read.some((e) => e.kind === "done" || e.chunk.isToken)) return events;
  }
}

/**
 * Runs `race.current` to its first token, hedged if it has none after `hedgeAfterMs` (see the file's
 * comment): the events read up to it. `race.current` is then the attempt that goes on, and throws
 * that attempt's error when it failed (the other failed before it, or there was none).
 */
export async function firstTokenRace(input: DispatchInput, race: Race, hedgeAfterMs: number): Promise<UpstreamEvent[]> {
  const primary = race.current;
  const first = settled(primary, toFirstToken(primary.attempt));
  const late = !(await settlesWithin(first, hedgeAfterMs, input.signal));
  let early: Settled | undefined;
  void first.then((r) => (early = r));
  const hedge = late ? await input.gate.hedge(input.leaseId).catch(() => null) : null;
  if (hedge?.kind !== "hedge") return outcome(await first);

  const twin = contender(input, hedge.grant);
  if (early?.events) {
    // The attempt answered while the gate was asked: the hedge is never started.
    twin.attempt.release();
    drop(input, race, "primary", twin, lostReport(input, twin));
    return outcome(await first);
  }
  const second = settled(twin, toFirstToken(twin.attempt));
  const winner = await Promise.race([first, second]);
  const other = winner.who === primary ? { who: twin, result: second } : { who: primary, result: first };
  const kept: HedgeKept = (winner.events ? winner.who : other.who) === primary ? "primary" : "hedge";
  if (winner.events) {
    other.who.attempt.cancel(new AttemptError("hedge_lost", "Another attempt produced the first token.", false));
    drop(input, race, kept, other.who, lostReport(input, other.who));
    follow(input, race, winner.who);
    return winner.events;
  }
  // The one that failed first leaves the race to the other.
  drop(input, race, kept, winner.who, failureReport(input, winner.who, winner.error));
  follow(input, race, other.who);
  return outcome(await other.result);
}

type Settled = { who: Contender; events: UpstreamEvent[]; error?: undefined } | { who: Contender; events?: undefined; error: unknown };

function settled(who: Contender, reading: Promise<UpstreamEvent[]>): Promise<Settled> {
  return reading.then(
    (events) => ({ who, events }),
    (error: unknown) => ({ who, error }),
  );
}

function outcome(result: Settled): UpstreamEvent[] {
  if (result.error !== undefined || !result.events) throw result.error;
  return result.events;
}

/** Whether `p` settles within `ms` (false too when the client left first: the attempt fails then anyway). */
async function settlesWithin(p: Promise<unknown>, ms: number, signal: AbortSignal): Promise<boolean> {
  const stop = new AbortController();
  const timer = sleep(ms, AbortSignal.any([signal, stop.signal])).then(() => false);
  const done = await Promise.race([p.then(() => true), timer]);
  stop.abort();
  return done;
}

/** The race goes on with `who`: the response headers name its backend. */
function follow(input: DispatchInput, race: Race, who: Contender): void {
  if (who !== race.current) input.onAttempt?.(who.grant);
  race.current = who;
}

/** `who` is out of the race, as `report` says: logged, and told to the gate with who goes on. */
function drop(input: DispatchInput, race: Race, kept: HedgeKept, who: Contender, report: AttemptReport): void {
  race.dropped.push(attemptLogEntry(who.grant, report, who.spanId));
  race.told = input.gate.hedgeEnded(input.leaseId, kept, report).catch(() => {});
}

/** The report of an attempt cancelled because the other one in its race produced the first token. */
function lostReport(input: DispatchInput, who: Contender): AttemptReport {
  const durationMs = Date.now() - who.attempt.startedAt;
  const usage = who.attempt.usageOr(input.admit.promptTokens, 0);
  return { backendId: who.grant.backend.id, outcome: "cancelled", errorCode: "hedge_lost", durationMs, chunks: 0, usage };
}

/** The report of an attempt that failed before its first token, in a hedge race. */
function failureReport(input: DispatchInput, who: Contender, err: unknown): AttemptReport {
  const base = {
    backendId: who.grant.backend.id,
    durationMs: Date.now() - who.attempt.startedAt,
    ttftMs: who.attempt.ttftMs,
    chunks: 0,
    usage: who.attempt.usageOr(input.admit.promptTokens, 0),
  };
  if (input.signal.aborted) return { ...base, outcome: "cancelled", errorCode: "client_disconnected" };
  if (!(err instanceof AttemptError)) logError(input.requestId, "hedged attempt failed", err);
  return { ...base, ...failureOf(err).fields };
}
