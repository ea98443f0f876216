-- Async generations (Prefer: respond-async; README "Async generations").
CREATE TABLE IF NOT EXISTS generations (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  status TEXT NOT NULL,
  request TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  completed_at INTEGER,
  result TEXT
);
CREATE INDEX IF NOT EXISTS generations_by_tenant ON generations (tenant, created_at);

-- The request of a dead letter (its body), so it can be run again (redrive); null when not kept.
ALTER TABLE dead_letters ADD COLUMN request TEXT;
