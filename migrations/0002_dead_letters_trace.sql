-- The W3C trace id of the request (x-sluice-trace-id), to find its spans in the backends' traces.
ALTER TABLE dead_letters ADD COLUMN trace_id TEXT;
