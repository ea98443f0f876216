-- Requests that exhausted their attempts: what was asked, and how each attempt failed.
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  request_id TEXT NOT NULL,
  model TEXT NOT NULL,
  status INTEGER NOT NULL,
  code TEXT NOT NULL,
  message TEXT NOT NULL,
  -- 1 when the client received part of the answer before the failure.
  partial INTEGER NOT NULL,
  -- JSON array: [{attempt, backendId, continuation, startedAt, durationMs, outcome, errorCode, errorMessage, httpStatus, chunks}]
  attempts TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_tenant ON dead_letters (tenant, id DESC);
CREATE INDEX IF NOT EXISTS dead_letters_by_age ON dead_letters (created_at);
