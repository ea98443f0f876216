-- The webhook a generation's request named (Sluice-Webhook: an id of alerts.webhooks, or "none");
-- null: the tenant's alerts.generationWebhook, read when the generation ends.
ALTER TABLE generations ADD COLUMN webhook TEXT;
