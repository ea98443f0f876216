// SQLite tables stored by their primary key alone (WITHOUT ROWID). A table whose key is TEXT or
// compound otherwise keeps a hidden rowid beside a separate index on its key, and every INSERT
// writes both: two rows written where one would do (cursor.rowsWritten says so, locally as on
// Cloudflare), and Cloudflare bills a Durable Object's SQLite per row written, $1.00 a million, the
// largest per-request charge sluice has (docs/performance.md, "A model of production").
//
// A table an earlier version created with a rowid is rebuilt once, in one transaction, its rows
// kept. Its indexes go with it: callers create theirs after this, with IF NOT EXISTS, as before.
// A column the table lacks is added (a new NOT NULL column needs a DEFAULT for the rows it has).

export function keyedTable(storage: DurableObjectStorage, name: string, columns: string): void {
  const sql = storage.sql;
  const create = (table: string) => sql.exec(`CREATE TABLE ${table} (${columns}) WITHOUT ROWID`);
  const [existing] = sql.exec<{ sql: string }>(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, name).toArray();
  if (!existing) {
    create(name);
    return;
  }
  const columnsOf = (table: string) =>
    sql
      .exec<{ name: string }>(`SELECT name FROM pragma_table_info(?)`, table)
      .toArray()
      .map((c) => c.name);
  if (/\bWITHOUT\s+ROWID\s*$/i.test(existing.sql)) {
    const has = new Set(columnsOf(name));
    for (const column of columnDefinitions(columns))
      if (!has.has(column.name)) sql.exec(`ALTER TABLE ${name} ADD COLUMN ${column.definition}`);
    return;
  }
  const rebuilt = `${name}_keyed`;
  storage.transactionSync(() => {
    sql.exec(`DROP TABLE IF EXISTS ${rebuilt}`);
    create(rebuilt);
    const old = new Set(columnsOf(name));
    const kept = columnsOf(rebuilt)
      .filter((c) => old.has(c))
      .join(", ");
    sql.exec(`INSERT INTO ${rebuilt} (${kept}) SELECT ${kept} FROM ${name}`);
    sql.exec(`DROP TABLE ${name}`);
    sql.exec(`ALTER TABLE ${rebuilt} RENAME TO ${name}`);
  });
}

/** The column definitions of a table definition, without its table constraints (PRIMARY KEY (...) and the like). */
export function columnDefinitions(columns: string): Array<{ name: string; definition: string }> {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < columns.length; i++) {
    const c = columns[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      parts.push(columns.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(columns.slice(start));
  return parts
    .map((p) => p.trim())
    .filter((p) => p && !/^(PRIMARY|UNIQUE|CHECK|FOREIGN|CONSTRAINT)\b/i.test(p))
    .map((definition) => ({ name: definition.split(/\s+/)[0]!, definition }));
}
