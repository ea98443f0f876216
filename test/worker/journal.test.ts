// The replay journal on a real Durable Object's SQLite: a write of appends is one row written (its
// chunks), the entry's end one more; a journal opened again over the same storage (a restarted
// gate) reads the same entry, totals rebuilt from the chunk rows; an entry written by an earlier
// version (totals in its row after every write, chunk rows without totals) reads as it did.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { JournalLimits } from "../../src/gate/core/journal-entry";
import { ReplayJournal } from "../../src/gate/journal";

const LIMITS: JournalLimits = { ttlMs: 3_600_000, maxEntries: 100, maxBytes: 1_000_000, maxEntryBytes: 1_000 };
const NOW = 1_000_000;

/** The object's storage, with every statement's rows written added up. */
function counted(storage: DurableObjectStorage): { storage: DurableObjectStorage; written: () => number } {
  let written = 0;
  const sql = storage.sql;
  const counting = new Proxy(sql, {
    get(target, prop) {
      if (prop !== "exec") return Reflect.get(target, prop, target);
      return (query: string, ...bindings: SqlStorageValue[]) => {
        const cursor = target.exec(query, ...bindings);
        const rows = cursor.toArray();
        written += cursor.rowsWritten;
        return rows[Symbol.iterator]() as unknown as SqlStorageCursor<Record<string, SqlStorageValue>>;
      };
    },
  });
  const wrapped = new Proxy(storage, { get: (target, prop) => (prop === "sql" ? counting : Reflect.get(target, prop, target)) });
  return { storage: wrapped, written: () => written };
}

const objectStub = (name: string) => env.TENANT_GATE.get(env.TENANT_GATE.idFromName(name));
const chunk = (i: number) => JSON.stringify({ choices: [{ delta: { content: `w${i} ` } }] });
const text = (n: number) => Array.from({ length: n }, (_, i) => `w${i} `).join("");

describe("the replay journal", () => {
  it("writes a flush of appends as one row and the end as one more; reopened, it reads the same entry", async () => {
    await runInDurableObject(objectStub("journal-rows"), (_gate, state) => {
      const { storage, written } = counted(state.storage);
      const journal = new ReplayJournal(storage);
      journal.begin("k", "idempotency", "hash", "req-1", "lease-1", LIMITS, NOW);
      const chunks = Array.from({ length: 9 }, (_, i) => chunk(i));
      for (const upTo of [3, 6, 9]) {
        expect(
          journal.append("k", "lease-1", { from: 0, chunks: chunks.slice(0, upTo), text: text(upTo), tokens: upTo }, LIMITS, NOW),
        ).toBe(upTo);
        const before = written();
        journal.flush();
        expect(written() - before).toBe(1);
      }
      const running = { chunks, text: text(9), tokens: 9, overflow: false, state: "running", leaseId: "lease-1" };
      expect(journal.get("k", NOW)).toMatchObject(running);
      // A restarted gate's journal, over the same storage.
      expect(new ReplayJournal(state.storage).get("k", NOW)).toMatchObject(running);
      expect(new ReplayJournal(state.storage).stats()).toEqual(journal.stats());

      const before = written();
      journal.finish("k", "lease-1", "complete", NOW + 1);
      expect(written() - before).toBe(1);
      const done = { ...running, state: "complete", leaseId: null };
      expect(new ReplayJournal(state.storage).get("k", NOW)).toMatchObject(done);
      const row = state.storage.sql.exec(`SELECT chunk_count, text, tokens FROM journal WHERE key = 'k'`).one();
      expect(row).toEqual({ chunk_count: 9, text: text(9), tokens: 9 });
    });
  });

  it("keeps a text that started over, and an entry past its size overflowed, across a reopen", async () => {
    await runInDurableObject(objectStub("journal-overflow"), (_gate, state) => {
      const journal = new ReplayJournal(state.storage);
      journal.begin("k", "idempotency", "hash", "req-1", "lease-1", LIMITS, NOW);
      journal.append("k", "lease-1", { from: 0, chunks: [chunk(0), chunk(1)], text: "first try", tokens: 2 }, LIMITS, NOW);
      journal.flush();
      journal.append("k", "lease-1", { from: 0, chunks: [chunk(0), chunk(1), chunk(2)], text: "again", tokens: 3 }, LIMITS, NOW);
      journal.flush();
      expect(new ReplayJournal(state.storage).get("k", NOW)).toMatchObject({ text: "again", tokens: 3, overflow: false });
      // Past maxEntryBytes: the chunks stop being recorded, the text and tokens go on.
      const big = "x".repeat(LIMITS.maxEntryBytes);
      journal.append("k", "lease-1", { from: 3, chunks: [big], text: "again and more", tokens: 4 }, LIMITS, NOW);
      journal.flush();
      const reopened = new ReplayJournal(state.storage).get("k", NOW)!;
      expect(reopened).toMatchObject({ text: "again and more", tokens: 4, overflow: true });
      expect(reopened.chunks).toHaveLength(3);
    });
  });

  it("reads an entry an earlier version wrote (totals in its row, chunk rows without them) and carries on from it", async () => {
    await runInDurableObject(objectStub("journal-earlier"), (_gate, state) => {
      new ReplayJournal(state.storage);
      const sql = state.storage.sql;
      sql.exec(
        `INSERT INTO journal (key, kind, body_hash, state, request_id, lease_id, chunk_count, text, tokens, bytes, overflow, updated_at, expires_at)
         VALUES ('k', 'idempotency', 'hash', 'running', 'req-1', 'lease-1', 2, ?, 2, ?, 0, ?, ?)`,
        text(2),
        chunk(0).length + chunk(1).length,
        NOW,
        NOW + LIMITS.ttlMs,
      );
      sql.exec(`INSERT INTO journal_chunks (key, seq, data) VALUES ('k', 0, ?)`, JSON.stringify([chunk(0), chunk(1)]));
      const journal = new ReplayJournal(state.storage);
      expect(journal.stats().bytes).toBe(chunk(0).length + chunk(1).length);
      expect(journal.get("k", NOW)).toMatchObject({ chunks: [chunk(0), chunk(1)], text: text(2), tokens: 2 });
      const chunks = [0, 1, 2, 3].map(chunk);
      expect(journal.append("k", "lease-1", { from: 0, chunks, text: text(4), tokens: 4 }, LIMITS, NOW)).toBe(4);
      journal.flush();
      expect(new ReplayJournal(state.storage).get("k", NOW)).toMatchObject({ chunks, text: text(4), tokens: 4 });
    });
  });
});
