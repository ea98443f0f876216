// The Worker's queue handler, by queue (names as in wrangler.toml): the alert queue's consumer posts
// webhooks, its dead-letter queue's keeps what could not be delivered (observe/alerts/delivery.ts);
// the jobs queue's runs batches, its dead-letter queue's records the lines that kept failing (jobs/consumer.ts).
import type { Env } from "../env";
import type { WebhookMessage } from "../observe/alerts/webhook-message";
import { configLogOf } from "../admin/config-log";
import { type DeliveryDeps, deliverAlerts, recordDeadAlerts } from "../observe/alerts/delivery";
import { logError } from "../log";
import { outboundUrlPolicy } from "../serve/url-policy";
import { readTenantConfig } from "../config/store";
import type { JobMessage } from "../jobs/messages";
import { runDeadJobs, runJobs } from "../jobs/consumer";

export const ALERT_QUEUE = "sluice-alerts";
export const ALERT_DEAD_LETTER_QUEUE = "sluice-alerts-dead";
export const JOB_QUEUE = "sluice-jobs";
export const JOB_DEAD_LETTER_QUEUE = "sluice-jobs-dead";

function deliveryDeps(env: Env): DeliveryDeps {
  const retryDelay = Number(env.ALERT_RETRY_DELAY_SECONDS ?? "10");
  return {
    db: env.DB,
    secrets: (tenant) => configLogOf(env.CONFIG_LOG, tenant).signingSecrets(tenant),
    urlPolicy: async (tenant) => {
      const config = await readTenantConfig(env, tenant);
      return config && outboundUrlPolicy(env, config);
    },
    publicUrl: env.PUBLIC_URL,
    retryDelaySeconds: Number.isFinite(retryDelay) && retryDelay >= 0 ? retryDelay : 10,
  };
}

export async function queues(batch: MessageBatch<WebhookMessage | JobMessage>, env: Env): Promise<void> {
  if (batch.queue === ALERT_QUEUE) return deliverAlerts(batch as MessageBatch<WebhookMessage>, deliveryDeps(env));
  if (batch.queue === ALERT_DEAD_LETTER_QUEUE) return recordDeadAlerts(batch as MessageBatch<WebhookMessage>, deliveryDeps(env));
  if (batch.queue === JOB_QUEUE) return runJobs(batch as MessageBatch<JobMessage>, env);
  if (batch.queue === JOB_DEAD_LETTER_QUEUE) return runDeadJobs(batch as MessageBatch<JobMessage>, env);
  // A queue bound to this Worker by mistake: its messages stay for a consumer that knows them.
  logError(undefined, "messages from an unknown queue", batch.queue, { messages: batch.messages.length });
  batch.retryAll();
}
