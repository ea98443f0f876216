import { describe, expect, it } from "vitest";
import type { EntrySnapshot } from "./journal-entry";
import { replayDecision } from "./replay-decision";

const entry = (extra: Partial<EntrySnapshot> = {}): EntrySnapshot => ({
  key: "idem:k",
  kind: "idempotency",
  state: "running",
  requestId: "r1",
  leaseId: "l1",
  chunks: ["c1", "c2"],
  text: "ab",
  tokens: 2,
  overflow: false,
  bodyHash: "h",
  ...extra,
});
const record = { key: "idem:k", kind: "idempotency" as const, bodyHash: "h", shared: true };
const facts = { live: false, resumable: true };

describe("replayDecision", () => {
  it("refuses the key with another body, and leaves a stored-only entry alone", () => {
    expect(replayDecision(entry(), { ...record, bodyHash: "other" }, facts)).toMatchObject({ status: 422, code: "idempotency_key_reused" });
    expect(replayDecision(entry({ state: "complete" }), { ...record, shared: false }, facts)).toBeUndefined();
  });

  it("joins a live run and replays a complete one (unless it was too large to keep)", () => {
    expect(replayDecision(entry(), record, { ...facts, live: true })).toMatchObject({ kind: "join" });
    expect(replayDecision(entry({ state: "complete" }), record, facts)).toMatchObject({ kind: "replay" });
    expect(replayDecision(entry({ state: "complete", overflow: true }), record, facts)).toMatchObject({
      status: 409,
      code: "replay_unavailable",
    });
  });

  it("takes over a stopped run: anew when it has nothing, by continuation when a backend can resume", () => {
    expect(replayDecision(entry({ state: "abandoned", tokens: 0, chunks: ["role"] }), record, facts)).toMatchObject({
      kind: "takeover",
      entry: { chunks: [] },
    });
    expect(replayDecision(entry({ state: "abandoned" }), record, facts)).toMatchObject({
      kind: "takeover",
      entry: { chunks: ["c1", "c2"] },
    });
    // Nothing can carry it on: what there is, with the partial-completion end.
    expect(replayDecision(entry({ state: "partial" }), record, { ...facts, resumable: false })).toMatchObject({ kind: "replay" });
    expect(replayDecision(entry({ state: "failed", overflow: true }), record, facts)).toMatchObject({ kind: "replay" });
  });
});
