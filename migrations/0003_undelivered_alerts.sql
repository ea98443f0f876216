-- Alert messages whose webhook kept failing past the alert queue's retries (its dead-letter queue).
CREATE TABLE IF NOT EXISTS undelivered_alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  webhook_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS undelivered_alerts_by_tenant ON undelivered_alerts (tenant, id);
