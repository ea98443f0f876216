// A replay-journal entry as the gate's policy sees it: the request recorded under an Idempotency-Key
// or a semantic key, its state and the chunks relayed so far (stored by gate/journal.ts).

export type EntryState = "running" | "complete" | "partial" | "failed" | "abandoned" | "cancelled";
export type EntryKind = "idempotency" | "semantic";

export interface JournalLimits {
  ttlMs: number;
  maxEntries: number;
  maxBytes: number;
  maxEntryBytes: number;
}

export interface EntrySnapshot {
  key: string;
  kind: EntryKind;
  state: EntryState;
  requestId: string;
  leaseId: string | null;
  /** Framed client chunks (JSON), in event order: chunk i has SSE id i + 1. */
  chunks: string[];
  /** Text delivered so far, for a continuation. */
  text: string;
  tokens: number;
  /** Chunks stopped being recorded (entry over maxEntryBytes): it cannot be replayed. */
  overflow: boolean;
  bodyHash: string;
}
