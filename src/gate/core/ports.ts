// What the gate core asks of its host (the TenantGate Durable Object, or a fake in tests): ids,
// randomness, storage writes, the alarm, a wake-up timer and the hand-over of queued verdicts. The
// core calls these synchronously and never awaits: whatever the host does with them (write behind,
// set a timer) it does on its own time.
import type { BreakerSnapshot } from "./breaker";
import type { EntryKind, EntrySnapshot, EntryState, JournalLimits } from "./journal-entry";
import type { Lease } from "./leases";
import type { AdmitResult, Checkpoint } from "./protocol";
import type { SpendHost } from "./spend-desk";

/** The replay journal, as the policy uses it (gate/journal.ts stores it in SQLite). */
export interface JournalPort {
  /** The live entry for `key` (expired entries read as none). */
  get(key: string, now: number): EntrySnapshot | undefined;
  /** Starts (or takes over) the entry for a request given a lease; chunks already recorded stay. */
  begin(key: string, kind: EntryKind, bodyHash: string, requestId: string, leaseId: string, limits: JournalLimits, now: number): void;
  /**
   * Records chunks from event index `progress.from` on. Returns how many chunks the entry holds for
   * this lease afterwards (chunks already held are skipped; a gap is refused), or null when the entry
   * is not this lease's.
   */
  append(key: string, leaseId: string, progress: Checkpoint, limits: JournalLimits, now: number): number | null;
  /** The entry can no longer be replayed whole (chunks were refused): it is kept as overflowed. */
  markIncomplete(key: string, leaseId: string): void;
  /** Ends the lease's run of the entry; followers of the key hear of it. */
  finish(key: string, leaseId: string, state: EntryState, now: number): void;
}

export interface GateHost extends SpendHost {
  /** A fresh unique id (lease ids). */
  newId(): string;
  /** A number in [0, 1) (backoff jitter). */
  random(): number;
  journal: JournalPort;
  /**
   * Stores a lease. One with a `recordKey` must be in storage before the next reply the first time:
   * after a restart, a twin must still see its generation as live rather than start a second one.
   */
  saveLease(lease: Lease): void;
  dropLease(id: string): void;
  /** The one durable alarm: at the earliest lease deadline, or none. */
  setAlarm(at: number | undefined): void;
  saveBreaker(backendId: string, snapshot: BreakerSnapshot): void;
  dropBreaker(backendId: string): void;
  /** Counters changed (the host stores them a moment later). */
  metricsChanged(): void;
  /**
   * A queued request's verdict. Returns true when an open admit or poll call took it; false keeps it
   * in the core for the next poll.
   */
  deliver(ticketId: string, result: AdmitResult): boolean;
  /** Call `GateCore.wake` at `at` (or earlier): a queued request's wait limit falls due then. */
  wakeAt(at: number): void;
  /**
   * The tenant has alert rules and the figures changed: evaluate them within ALERT_EVALUATE_MS, or
   * at once when `now` is given (a breaker opened: the page that matters most goes out first).
   */
  alertsWanted(now?: boolean): void;
  /** Requests wait, and some may for credits of a fleet backend: report to the pools soon (GateCore.poolReports). */
  poolsWanted(): void;
}
