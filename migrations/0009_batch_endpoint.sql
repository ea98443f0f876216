-- A batch's endpoint: chat completions, responses or embeddings (every line of its file uses it).
ALTER TABLE batches ADD COLUMN endpoint TEXT NOT NULL DEFAULT '/v1/chat/completions';
