-- Workflows (README, "Workflows"): definitions by version, runs, their steps and the events of each run.
CREATE TABLE IF NOT EXISTS workflow_definitions (
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  definition TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  -- Set when the name was deleted: runs keep reading the version they started with.
  deleted_at INTEGER,
  PRIMARY KEY (tenant, name, version)
);

CREATE TABLE IF NOT EXISTS workflow_runs (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  status TEXT NOT NULL,
  input TEXT NOT NULL,
  idempotency_key TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  ended_at INTEGER,
  error TEXT
);
CREATE INDEX IF NOT EXISTS workflow_runs_by_tenant ON workflow_runs (tenant, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS workflow_runs_by_key ON workflow_runs (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Steps and events name their tenant too, so deleting the tenant erases them even if a run's record went first.
CREATE TABLE IF NOT EXISTS workflow_steps (
  tenant TEXT NOT NULL,
  run_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  backend TEXT,
  started_at INTEGER,
  ended_at INTEGER,
  tokens INTEGER NOT NULL DEFAULT 0,
  output TEXT,
  error TEXT,
  items TEXT,
  PRIMARY KEY (run_id, step_id)
);

CREATE TABLE IF NOT EXISTS workflow_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  run_id TEXT NOT NULL,
  -- One event per transition: a replayed workflow writes it again, and the second is ignored.
  key TEXT NOT NULL,
  event TEXT NOT NULL,
  at INTEGER NOT NULL,
  UNIQUE (run_id, key)
);
CREATE INDEX IF NOT EXISTS workflow_events_by_tenant ON workflow_events (tenant);
CREATE INDEX IF NOT EXISTS workflow_steps_by_tenant ON workflow_steps (tenant);
