// The gate's leases: one per admitted request, from its slot to its settle (or its reclaim when
// the Worker went silent), with the request's attempts on it, each holding a slot of its backend.
// The table keeps the in-flight count per backend and the alarm at the earliest deadline.
import type { GateHost } from "./ports";
import type { PlanEntry } from "./plan";
import type { Waiter } from "./tickets";
import { LEASE_RENEW_MS, LEASE_TTL_MS } from "./lease-timing";
import type { SurfaceName } from "./metrics";

/** How far behind its real deadline a lease's stored one may fall (see LeaseTable.extend). */
export const STORED_DEADLINE_LAG_MS = LEASE_RENEW_MS / 2;

export interface Lease {
  id: string;
  requestId: string;
  plan: PlanEntry[];
  /** Attempts granted so far. */
  attempts: number;
  /** Of those, attempts that delivered text before they failed (see GateCore.retry). */
  progressed?: number;
  /** Of those, attempts that timed out on a slow backend (adaptive-limit.ts): neither count toward maxAttempts. */
  slowed?: number;
  /** Plan index of the current attempt. */
  cursor: number;
  /** The backend of the attempt in progress (null between attempts). */
  backendId: string | null;
  probe: boolean;
  grantedAt: number;
  /** When the current attempt calls its backend (after its backoff): its TTFT is counted from here. */
  attemptAt?: number;
  deadline: number;
  /** Journal key the request records its chunks under, if any. */
  recordKey?: string;
  /** The current attempt produced a first token (its breaker already counted the success). */
  answered?: boolean;
  /** The current attempt does not tell its first token (AttemptGrant.notifyFirstToken): its report will. */
  silent?: true;
  /** Backends that failed an attempt of this request: its retries try them last. */
  failed?: string[];
  /** Completion tokens the attempts reported so far. */
  tokens?: number;
  /** Tokens charged to the tenant's rate limit at admission (settled at the end to the prompt and what was generated). */
  rateTokens?: number;
  /** The prompt's estimated tokens. */
  promptTokens?: number;
  /** Background work (a batch line): counted against limits.background. */
  background?: true;
  /** How the plan was degraded at admission (told again to a resent admission). */
  degradations?: string[];
  /** The API its client spoke, when not chat (its end is counted for it). */
  surface?: SurfaceName;
  /** The API key the request came with (the ledger's rows are per key). */
  keyId?: string;
  /** What its attempts cost so far (spend-desk.ts); `estimated`: some attempt's usage was sluice's estimate. */
  spent?: { usd: number; tokens: number; estimated: boolean };
  /** A hedge of the attempt in progress (core/hedging.ts), holding a slot of its own backend until the race ends. */
  hedge?: { backendId: string; cursor: number; startedAt: number };
}

/** A new lease for `waiter`, its first attempt at plan index `cursor`. */
export function newLease(id: string, waiter: Waiter, cursor: number, now: number): Lease {
  const { request } = waiter;
  return {
    id,
    requestId: request.requestId,
    plan: waiter.plan,
    attempts: 0,
    cursor,
    backendId: null,
    probe: false,
    grantedAt: now,
    deadline: now + LEASE_TTL_MS,
    recordKey: request.record?.key,
    promptTokens: request.promptTokens,
    ...(request.key ? { keyId: request.key.id } : {}),
    ...(waiter.rateTokens !== undefined ? { rateTokens: waiter.rateTokens } : {}),
    ...(request.priority === "background" ? { background: true as const } : {}),
    ...(waiter.degradations.length > 0 ? { degradations: waiter.degradations } : {}),
    ...(request.surface && request.surface !== "chat" ? { surface: request.surface } : {}),
  };
}

export class LeaseTable {
  private readonly leases = new Map<string, Lease>();
  /** Lease ids by request id: an admission resent for a request gets its lease again. */
  private readonly byRequest = new Map<string, string>();
  private readonly perBackend = new Map<string, number>();
  /** The most attempts in flight on each backend since takeHighWater last read it (for fleet backends only: see takeHighWater). */
  private readonly highWater = new Map<string, number>();
  private alarmAt: number | undefined;
  /** Each lease's deadline as last handed to storage (see extend). */
  private readonly storedDeadline = new Map<string, number>();
  /** Leases of background work. */
  private backgroundLeases = 0;

  constructor(private readonly host: Pick<GateHost, "saveLease" | "dropLease" | "setAlarm">) {}

  get size(): number {
    return this.leases.size;
  }

  get background(): number {
    return this.backgroundLeases;
  }

  get(id: string): Lease | undefined {
    return this.leases.get(id);
  }

  /** The lease held by the request with this id, if any. */
  ofRequest(requestId: string): Lease | undefined {
    const id = this.byRequest.get(requestId);
    return id === undefined ? undefined : this.leases.get(id);
  }

  /** The lease of the request running under journal key `key`, if any (leases are at most maxConcurrency). */
  withRecordKey(key: string): Lease | undefined {
    for (const lease of this.leases.values()) if (lease.recordKey === key) return lease;
    return undefined;
  }

  all(): IterableIterator<Lease> {
    return this.leases.values();
  }

  /** Attempts in progress on the backend. */
  inFlight(backendId: string): number {
    return this.perBackend.get(backendId) ?? 0;
  }

  /**
   * Attempts on the backend, `except`'s aside, that started from `from` to `to`, do not tell their
   * first token (`silent`) and have not told a late one (`answered`): what a breaker weighing a
   * failure has not heard (breaker.ts, Unheard). Scans every lease; only a failure asks.
   */
  unheard(backendId: string, from: number, to: number, except: Lease): number {
    let count = 0;
    for (const lease of this.leases.values()) {
      const at = lease.attemptAt ?? lease.grantedAt;
      if (lease !== except && lease.backendId === backendId && lease.silent && !lease.answered && at >= from && at <= to) count++;
    }
    return count;
  }

  /** Leases found in storage at start-up: their attempts hold their slots again. */
  restore(leases: Iterable<Lease>): void {
    for (const lease of leases) {
      this.add(lease);
      if (lease.backendId) this.addInFlight(lease.backendId, 1);
      if (lease.hedge) this.addInFlight(lease.hedge.backendId, 1);
    }
    this.rescheduleAlarm();
  }

  add(lease: Lease): void {
    this.leases.set(lease.id, lease);
    this.byRequest.set(lease.requestId, lease.id);
    if (lease.background) this.backgroundLeases++;
  }

  /** The lease's next attempt goes to `backendId`, taking one of its slots. */
  occupy(lease: Lease, backendId: string, probe: boolean): void {
    lease.attempts++;
    lease.backendId = backendId;
    lease.probe = probe;
    this.addInFlight(backendId, 1);
  }

  /** The lease's attempt ended: its backend slot is free. Returns the backend it held, if any. */
  vacate(lease: Lease): string | null {
    const id = lease.backendId;
    if (!id) return null;
    this.addInFlight(id, -1);
    lease.backendId = null;
    lease.probe = false;
    lease.answered = false;
    lease.silent = undefined;
    return id;
  }

  /** A hedge of the lease's attempt goes to the plan entry at `cursor`, taking a slot of its backend. */
  occupyHedge(lease: Lease, backendId: string, cursor: number, now: number): void {
    lease.hedge = { backendId, cursor, startedAt: now };
    this.addInFlight(backendId, 1);
  }

  /** The hedge race ended: the hedge's slot is free (it lost), or it becomes the attempt in progress (it won). */
  endHedge(lease: Lease, won: boolean): void {
    const hedge = lease.hedge;
    if (!hedge) return;
    lease.hedge = undefined;
    if (!won) return void this.addInFlight(hedge.backendId, -1);
    this.vacate(lease);
    lease.attempts++;
    lease.backendId = hedge.backendId;
    lease.cursor = hedge.cursor;
    lease.attemptAt = hedge.startedAt;
  }

  /** Stores the lease (granted, or its deadline moved) and keeps the alarm at the earliest deadline. */
  save(lease: Lease): void {
    this.host.saveLease(lease);
    this.storedDeadline.set(lease.id, lease.deadline);
    // Deadlines only move forward, so an alarm already set earlier still fires in time.
    if (this.alarmAt === undefined || lease.deadline < this.alarmAt) {
      this.alarmAt = lease.deadline;
      this.host.setAlarm(lease.deadline);
    }
  }

  /**
   * Moves the lease's deadline to LEASE_TTL_MS from now. Storage hears of it only once the stored
   * deadline is STORED_DEADLINE_LAG_MS behind: a gate that restarts then finds every live lease at
   * least LEASE_TTL_MS - LEASE_RENEW_MS - STORED_DEADLINE_LAG_MS from expiring, longer than a live
   * request goes between two calls (a renewal every LEASE_RENEW_MS), while a journaled request's
   * checkpoints, four a second, cost a row written every few seconds instead of one each (rows
   * written are what Cloudflare bills a Durable Object's storage by).
   */
  extend(lease: Lease, now: number): void {
    lease.deadline = now + LEASE_TTL_MS;
    const stored = this.storedDeadline.get(lease.id);
    if (stored === undefined || lease.deadline - stored >= STORED_DEADLINE_LAG_MS) this.save(lease);
  }

  remove(lease: Lease): void {
    this.storedDeadline.delete(lease.id);
    if (this.byRequest.get(lease.requestId) === lease.id) this.byRequest.delete(lease.requestId);
    if (this.leases.delete(lease.id) && lease.background) this.backgroundLeases--;
    this.host.dropLease(lease.id);
  }

  /** Leases whose deadline passed. */
  expired(now: number): Lease[] {
    return [...this.leases.values()].filter((l) => l.deadline <= now);
  }

  /** Sets the one alarm to the earliest deadline (or clears it): after a restart or an alarm. */
  rescheduleAlarm(): void {
    let earliest: number | undefined;
    for (const l of this.leases.values()) if (earliest === undefined || l.deadline < earliest) earliest = l.deadline;
    this.alarmAt = earliest;
    this.host.setAlarm(earliest);
  }

  /** The most attempts in flight on the backend since the last call (a demand report between two samples). */
  takeHighWater(backendId: string): number {
    const most = Math.max(this.highWater.get(backendId) ?? 0, this.inFlight(backendId));
    this.highWater.set(backendId, this.inFlight(backendId));
    return most;
  }

  private addInFlight(backendId: string, delta: number): void {
    const n = Math.max(0, this.inFlight(backendId) + delta);
    this.perBackend.set(backendId, n);
    if (n > (this.highWater.get(backendId) ?? 0)) this.highWater.set(backendId, n);
  }
}
