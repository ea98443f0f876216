// How a request's journal entry ends when the request settles: the last chunks are recorded, an
// entry that lost chunks is marked incomplete (never replayed as if whole), and its state follows
// the request's outcome.
import type { EntryKind, EntryState, JournalLimits } from "./journal-entry";
import type { JournalPort } from "./ports";
import type { Checkpoint, SettleOutcome } from "./protocol";

const ENTRY_STATE: Record<SettleOutcome, EntryState> = {
  complete: "complete",
  partial: "partial",
  cancelled: "abandoned",
  failed: "failed",
  stale: "failed",
};

export function closeEntry(
  journal: JournalPort,
  entry: { key: string; leaseId: string },
  outcome: SettleOutcome,
  progress: Checkpoint | undefined,
  limits: JournalLimits,
  now: number,
): void {
  const { key, leaseId } = entry;
  // Chunks the journal refuses now can never be added: the entry is not whole, not replayable.
  if (progress) {
    const held = journal.append(key, leaseId, progress, limits, now);
    const refused = held !== null && held < progress.from + progress.chunks.length;
    if (refused || progress.discarded) journal.markIncomplete(key, leaseId);
  }
  journal.finish(key, leaseId, ENTRY_STATE[outcome], now);
}

/**
 * A key nothing runs under yet is cancelled (GateCore.cancel): its entry, left running by no one
 * (`mark` is a lease id no request holds), ends cancelled, so the request admitted later replays that.
 * A complete entry stays complete: its answer exists.
 */
export function markCancelled(
  journal: JournalPort,
  record: { key: string; kind: EntryKind; bodyHash: string },
  mark: string,
  limits: JournalLimits,
  now: number,
): void {
  const state = journal.get(record.key, now)?.state;
  if (state === "complete" || state === "cancelled") return;
  journal.begin(record.key, record.kind, record.bodyHash, mark, mark, limits, now);
  journal.finish(record.key, mark, "cancelled", now);
}
