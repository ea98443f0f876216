// What an existing journal entry means for a new request with the same key: replay the stored
// answer, join the live generation, take the entry over (carry on from its checkpoint, or start it
// anew), refuse (the key was used with another body), or nothing (the entry is stored-only).
import type { EntrySnapshot } from "./journal-entry";
import { rejections } from "./rejections";
import type { AdmitResult, RecordSpec } from "./protocol";

export type ReplayDecision = AdmitResult | { kind: "takeover"; entry: EntrySnapshot } | undefined;

export interface EntryFacts {
  /** The entry's run still holds its lease: its generation is going on right now. */
  live: boolean;
  /** A backend of the request's plan can continue a stream (`resume: true`). */
  resumable: boolean;
}

export function replayDecision(entry: EntrySnapshot, record: RecordSpec, facts: EntryFacts): ReplayDecision {
  if (entry.bodyHash !== record.bodyHash) return rejections.keyReused();
  if (!record.shared) return undefined;
  if (facts.live) return { kind: "join", entry };
  if (entry.state === "complete") return entry.overflow ? rejections.replayUnavailable() : { kind: "replay", entry };
  // A cancelled generation stays cancelled: what it made is handed back, ending as cancelled.
  if (entry.state === "cancelled") return { kind: "replay", entry };
  if (entry.tokens === 0 && !entry.overflow) return { kind: "takeover", entry: { ...entry, chunks: [] } };
  // Part of the answer exists: carry on by continuation, or hand back what there is.
  if (facts.resumable && !entry.overflow) return { kind: "takeover", entry };
  return { kind: "replay", entry };
}
