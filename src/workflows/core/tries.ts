// The tries of one step (or one map item): up to `attempts` attempts, each possibly refused by the
// router for now and then made again after a wait, which costs no attempt (at most MAX_DEFERRALS a
// step). Every try has a name of its own, the durable step that keeps its result:
// `<name>#<attempt>`, then `<name>#<attempt>.<n>` for the n-th retake after a refusal. Pure: the
// runner (runner.ts) makes the tries and sleeps the waits.
import { backoffMs } from "./run-state";

/** Calls of one step the router may refuse for now before one counts as a failed attempt. */
export const MAX_DEFERRALS = 20;
/** The longest wait for one refusal (Retry-After is capped to it). */
export const MAX_DEFERRAL_MS = 60_000;

export interface Tries {
  attempt: number;
  /** Retakes of this attempt after refusals. */
  retake: number;
  /** Refusals so far, over all attempts. */
  deferrals: number;
}

export const FIRST_TRY: Tries = { attempt: 1, retake: 0, deferrals: 0 };

export const tryName = (name: string, t: Tries) => (t.retake === 0 ? `${name}#${t.attempt}` : `${name}#${t.attempt}.${t.retake}`);

/** How a try ended: `deferMs` when the router refused it for now (after this long it may come back). */
export type TryEnd = { ok: true } | { ok: false; deferMs: number | null };

export type NextTry =
  | { kind: "succeeded" }
  /** Refused for now: wait, then retake the same attempt. */
  | { kind: "defer"; next: Tries; waitMs: number }
  /** The attempt failed: wait the backoff, then the next attempt. */
  | { kind: "retry"; next: Tries; waitMs: number }
  /** The last attempt failed. */
  | { kind: "gave_up" };

export function afterTry(t: Tries, end: TryEnd, attempts: number, random: () => number): NextTry {
  if (end.ok) return { kind: "succeeded" };
  if (end.deferMs !== null && t.deferrals < MAX_DEFERRALS) {
    const deferrals = t.deferrals + 1;
    const waitMs = Math.min(MAX_DEFERRAL_MS, Math.max(end.deferMs, backoffMs(deferrals, random)));
    return { kind: "defer", next: { attempt: t.attempt, retake: t.retake + 1, deferrals }, waitMs };
  }
  if (t.attempt >= attempts) return { kind: "gave_up" };
  return { kind: "retry", next: { attempt: t.attempt + 1, retake: 0, deferrals: t.deferrals }, waitMs: backoffMs(t.attempt, random) };
}
