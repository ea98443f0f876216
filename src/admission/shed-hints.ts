// Queue-full verdicts a Worker repeats without asking the gate again, for a few milliseconds.
// Under overload most requests are turned away, and each one would otherwise cost a round trip to
// the tenant's gate (on Cloudflare, possibly in another region) to learn what the last one learnt.
// The gate decides whether and for how long (`shedForMs` on its rejection). A verdict for one
// priority covers that priority and lower ones: a higher-priority request may still displace a
// queued one, so it always asks. The Worker counts what it answered and reports it with its next
// admission, so the gate's counters stay whole.
import { PRIORITIES, type Priority } from "../gate/core/queue";
import type { Rejection } from "../gate/core/protocol";

interface Hint {
  until: number;
  /** Index in PRIORITIES of the highest priority covered (0 is "high"). */
  rank: number;
  rejection: Rejection;
}

export class ShedHints {
  private readonly hints = new Map<string, Hint>();
  private readonly answered = new Map<string, number>();

  constructor(private readonly maxTenants = 1_000) {}

  /** Remembers the gate's rejection of a `priority` request, if the gate allows repeating it. */
  note(tenant: string, priority: Priority, rejection: Rejection, now: number): void {
    if (!rejection.shedForMs) return;
    const active = this.active(tenant, now);
    const rank = Math.min(active?.rank ?? PRIORITIES.length, PRIORITIES.indexOf(priority));
    this.hints.delete(tenant);
    if (this.hints.size >= this.maxTenants) this.hints.delete(this.hints.keys().next().value!);
    this.hints.set(tenant, { until: now + rejection.shedForMs, rank, rejection });
  }

  /** The rejection to answer with, when a recent verdict covers this request; counted. */
  check(tenant: string, priority: Priority, now: number): Rejection | undefined {
    const hint = this.active(tenant, now);
    if (!hint || PRIORITIES.indexOf(priority) < hint.rank) return undefined;
    this.answered.set(tenant, (this.answered.get(tenant) ?? 0) + 1);
    return hint.rejection;
  }

  /** Requests answered here since the last call, for the gate's counters. */
  takeAnswered(tenant: string): number {
    const n = this.answered.get(tenant) ?? 0;
    this.answered.delete(tenant);
    return n;
  }

  private active(tenant: string, now: number): Hint | undefined {
    const hint = this.hints.get(tenant);
    if (hint && now < hint.until) return hint;
    this.hints.delete(tenant);
    return undefined;
  }
}
