-- Files (their bytes are in R2) and batches (README, "Batches").
CREATE TABLE IF NOT EXISTS files (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  filename TEXT NOT NULL,
  purpose TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  lines INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS files_by_tenant ON files (tenant, created_at);

CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  status TEXT NOT NULL,
  input_file_id TEXT NOT NULL,
  output_file_id TEXT,
  error_file_id TEXT,
  metadata TEXT,
  errors TEXT,
  total INTEGER NOT NULL,
  completed INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  in_progress_at INTEGER,
  finalizing_at INTEGER,
  completed_at INTEGER,
  failed_at INTEGER,
  expired_at INTEGER,
  cancelling_at INTEGER,
  cancelled_at INTEGER
);
CREATE INDEX IF NOT EXISTS batches_by_tenant ON batches (tenant, created_at);

-- Each line's result until the batch is finalized into its output and error files.
CREATE TABLE IF NOT EXISTS batch_lines (
  batch_id TEXT NOT NULL,
  line INTEGER NOT NULL,
  ok INTEGER NOT NULL,
  result TEXT NOT NULL,
  PRIMARY KEY (batch_id, line)
);
