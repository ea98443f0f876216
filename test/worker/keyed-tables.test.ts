// The gates' tables are stored by their key alone (WITHOUT ROWID), so a row costs one row written,
// which Cloudflare bills; a table an earlier version made with a rowid is rebuilt once, rows kept.
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { columnDefinitions, keyedTable } from "../../src/gate/keyed-table";
import { createTenant, eventually, gateOf, gateStats, simConfig, storedLeases } from "./helpers";

type Sql = SqlStorage;
const tableSql = (sql: Sql, name: string) =>
  sql.exec<{ sql: string }>(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, name).toArray()[0]?.sql;
const tablesOf = (sql: Sql) =>
  sql
    // Not SQLite's own (sqlite_sequence) nor the platform's (_cf_...).
    .exec<{ name: string; sql: string }>(`SELECT name, sql FROM sqlite_master WHERE type = 'table'`)
    .toArray()
    .filter((t) => !t.name.startsWith("sqlite_") && !t.name.startsWith("_cf_"));
const isKeyed = (createSql: string | undefined) => /WITHOUT ROWID$/.test(createSql ?? "");

describe("keyedTable", () => {
  it("creates a table without a rowid, where an insert and a delete are one row written each", async () => {
    await runInDurableObject(gateOf("keyed-fresh"), (_gate, state) => {
      const sql = state.storage.sql;
      keyedTable(state.storage, "fresh", "id TEXT PRIMARY KEY, data TEXT NOT NULL");
      expect(isKeyed(tableSql(sql, "fresh"))).toBe(true);
      const insert = sql.exec(`INSERT OR REPLACE INTO fresh (id, data) VALUES (?, ?)`, "a", "{}");
      insert.toArray();
      const replace = sql.exec(`INSERT OR REPLACE INTO fresh (id, data) VALUES (?, ?)`, "a", "{}");
      replace.toArray();
      const remove = sql.exec(`DELETE FROM fresh WHERE id = ?`, "a");
      remove.toArray();
      expect([insert.rowsWritten, replace.rowsWritten, remove.rowsWritten]).toEqual([1, 1, 1]);
    });
  });

  it("rebuilds a table made with a rowid once, keeping its rows, and leaves a keyed one alone", async () => {
    await runInDurableObject(gateOf("keyed-old"), (_gate, state) => {
      const sql = state.storage.sql;
      sql.exec(`CREATE TABLE old (id TEXT PRIMARY KEY, n INTEGER NOT NULL, gone TEXT)`);
      sql.exec(`CREATE INDEX old_n ON old (n)`);
      sql.exec(`INSERT INTO old (id, n, gone) VALUES ('a', 1, 'x'), ('b', 2, 'y')`);
      const rowid = sql.exec(`INSERT INTO old (id, n) VALUES ('c', 3)`);
      rowid.toArray();
      // What the rowid costs: the row and its key's index.
      expect(rowid.rowsWritten).toBe(3);

      // The new definition drops a column and adds one with a default.
      keyedTable(state.storage, "old", "id TEXT PRIMARY KEY, n INTEGER NOT NULL, added INTEGER NOT NULL DEFAULT 7");
      expect(isKeyed(tableSql(sql, "old"))).toBe(true);
      expect(sql.exec(`SELECT id, n, added FROM old ORDER BY id`).toArray()).toEqual([
        { id: "a", n: 1, added: 7 },
        { id: "b", n: 2, added: 7 },
        { id: "c", n: 3, added: 7 },
      ]);
      // Its index went with the old table; the caller makes it again, as on every start.
      expect(sql.exec(`SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'old_n'`).toArray()).toEqual([]);
      expect(sql.exec(`SELECT name FROM sqlite_master WHERE name = 'old_keyed'`).toArray()).toEqual([]);

      sql.exec(`INSERT INTO old (id, n) VALUES ('d', 4)`);
      keyedTable(state.storage, "old", "id TEXT PRIMARY KEY, n INTEGER NOT NULL, added INTEGER NOT NULL DEFAULT 7");
      expect(sql.exec(`SELECT COUNT(*) AS n FROM old`).one()).toEqual({ n: 4 });
    });
  });
});

describe("keyedTable, a column added", () => {
  it("adds a column a keyed table lacks, with its default on the rows it has", async () => {
    await runInDurableObject(gateOf("keyed-add"), (_gate, state) => {
      const sql = state.storage.sql;
      keyedTable(state.storage, "grows", "key TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (key, seq)");
      sql.exec(`INSERT INTO grows (key, seq) VALUES ('a', 1)`);
      keyedTable(
        state.storage,
        "grows",
        "key TEXT NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 0, text TEXT NOT NULL DEFAULT '', PRIMARY KEY (key, seq)",
      );
      expect(sql.exec(`SELECT * FROM grows`).toArray()).toEqual([{ key: "a", seq: 1, n: 0, text: "" }]);
      expect(isKeyed(tableSql(sql, "grows"))).toBe(true);
    });
  });

  it("reads a definition's columns, not its table constraints", () => {
    expect(columnDefinitions("a TEXT NOT NULL, b INTEGER DEFAULT (1 + 2), PRIMARY KEY (a, b)")).toEqual([
      { name: "a", definition: "a TEXT NOT NULL" },
      { name: "b", definition: "b INTEGER DEFAULT (1 + 2)" },
    ]);
  });
});

describe("the gates' tables", () => {
  it("are all keyed, and a gate whose leases table has a rowid rebuilds it when it restarts, its leases kept", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const admitted = await gateOf(tenant).admit({ tenant, requestId: "req-kept", alias: "chat", priority: "normal", promptTokens: 10 });
    if (admitted.kind !== "lease") throw new Error("not admitted");
    await eventually(async () => (await storedLeases(tenant)) === 1);
    await runInDurableObject(gateOf(tenant), (_gate, state) => {
      const sql = state.storage.sql;
      const tables = tablesOf(sql);
      expect(tables.map((t) => t.name).sort()).toEqual(
        ["alert_outbox", "breakers", "budgets", "journal", "journal_chunks", "leases", "meta", "spend"].sort(),
      );
      // The outbox's key is an integer: its rowid is the key.
      expect(tables.filter((t) => !isKeyed(t.sql)).map((t) => t.name)).toEqual(["alert_outbox"]);
      // As an earlier version made it, with the lease in it.
      sql.exec(`ALTER TABLE leases RENAME TO leases_now`);
      sql.exec(`CREATE TABLE leases (id TEXT PRIMARY KEY, deadline INTEGER NOT NULL, data TEXT NOT NULL)`);
      sql.exec(`INSERT INTO leases SELECT * FROM leases_now`);
      sql.exec(`DROP TABLE leases_now`);
      expect(isKeyed(tableSql(sql, "leases"))).toBe(false);
    });
    await abortAllDurableObjects();
    expect((await gateStats(tenant)).inFlight).toBe(1);
    await runInDurableObject(gateOf(tenant), (_gate, state) => {
      expect(isKeyed(tableSql(state.storage.sql, "leases"))).toBe(true);
    });

    const pool = env.POOL_GATE.get(env.POOL_GATE.idFromName("keyed-pool"));
    await runInDurableObject(pool, (_pool, state) => {
      const tables = tablesOf(state.storage.sql);
      expect(tables.map((t) => t.name).sort()).toEqual(["backends", "holders", "tenants"]);
      expect(tables.every((t) => isKeyed(t.sql))).toBe(true);
    });
  });
});
