-- Stored responses of the OpenAI Responses API (store: true, the default): the response object, and
-- the conversation so far as chat messages, which a later previous_response_id continues.
CREATE TABLE IF NOT EXISTS responses (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  conversation TEXT NOT NULL,
  response TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_by_tenant ON responses (tenant, created_at);
