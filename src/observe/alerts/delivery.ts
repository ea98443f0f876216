// The alert queue's consumers (alerts, and the ends of async generations: webhook-message.ts). The first posts each message to its webhook, signed (signature.ts),
// and on failure asks the queue to deliver it again later (exponential delay); after the queue's
// max_retries it lands in the dead-letter queue, whose consumer records it as undelivered. A slow
// or dead webhook therefore costs the queue time, never a request's. Delivery is at least once: a
// receiver drops a repeated `webhook-id`.
import { type BackendUrlPolicy, backendUrlProblem } from "../../config/backend-url";
import { logError } from "../../log";
import { recordUndelivered } from "./undelivered";
import { signatureHeader } from "./signature";
import { webhookPayload } from "./payload";
import type { WebhookMessage } from "./webhook-message";

/** A webhook that has not answered in this long counts as failed. */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** The longest delay between two tries of one message. */
export const MAX_RETRY_DELAY_SECONDS = 300;

export interface DeliveryDeps {
  db: D1Database;
  /** The tenant's signing secrets, current first (then one rotated out, in its grace period); null: the tenant is gone. */
  secrets(tenant: string): Promise<string[] | null>;
  /** Where the tenant's webhooks may live now (serve/url-policy.ts: the operator's allowance may have changed); null: the tenant is gone. */
  urlPolicy(tenant: string): Promise<BackendUrlPolicy | null>;
  /** The router's public URL, for the dashboard link (none: no link). */
  publicUrl?: string;
  /** The first retry's delay; each next one doubles it, up to MAX_RETRY_DELAY_SECONDS. */
  retryDelaySeconds: number;
}

export function retryDelaySeconds(attempts: number, base: number): number {
  return Math.min(MAX_RETRY_DELAY_SECONDS, base * 2 ** Math.max(0, attempts - 1));
}

export async function deliverAlerts(batch: MessageBatch<WebhookMessage>, deps: DeliveryDeps): Promise<void> {
  // A batch is at most max_batch_size messages (wrangler.toml): they go out together.
  await Promise.all(batch.messages.map((message) => deliverOne(message, deps)));
}

async function deliverOne(message: Message<WebhookMessage>, deps: DeliveryDeps): Promise<void> {
  const { webhook, event } = message.body;
  const fields = { tenant: event.tenant, webhook: webhook.id, event: event.id, attempt: message.attempts };
  let failure: string;
  try {
    const secrets = await deps.secrets(event.tenant);
    if (secrets === null) {
      // The tenant was deleted: nothing is kept or sent on its behalf.
      message.ack();
      return;
    }
    const policy = await deps.urlPolicy(event.tenant);
    const refused = policy === null ? "belongs to a tenant that has no config" : backendUrlProblem(webhook.url, policy);
    if (refused) {
      await recordUndelivered(deps.db, message.body, `the webhook URL ${refused}`, Date.now());
      message.ack();
      return;
    }
    const body = webhookPayload(message.body, deps.publicUrl);
    const timestamp = Math.floor(Date.now() / 1000);
    const response = await fetch(webhook.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "sluice-alerts",
        "webhook-id": event.id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": await signatureHeader(secrets, event.id, timestamp, body),
      },
      body,
      // A redirect is an answer to log, not one to follow with a signed body.
      redirect: "manual",
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    });
    await response.body?.cancel();
    if (response.ok) {
      message.ack();
      return;
    }
    failure = `the webhook answered HTTP ${response.status}`;
  } catch (err) {
    failure = String(err);
  }
  logError(undefined, "webhook message not delivered; the queue will retry", failure, fields);
  message.retry({ delaySeconds: retryDelaySeconds(message.attempts, deps.retryDelaySeconds) });
}

/** The dead-letter queue's consumer: messages the webhook kept refusing are kept as undelivered. */
export async function recordDeadAlerts(batch: MessageBatch<WebhookMessage>, deps: Pick<DeliveryDeps, "db" | "secrets">): Promise<void> {
  for (const message of batch.messages) {
    const { webhook, event } = message.body;
    try {
      if ((await deps.secrets(event.tenant)) === null) {
        message.ack(); // the tenant was deleted meanwhile
        continue;
      }
      await recordUndelivered(deps.db, message.body, "the webhook failed every delivery the alert queue tried", Date.now());
      logError(undefined, "webhook message undelivered after every retry", `webhook ${webhook.id}`, {
        tenant: event.tenant,
        event: event.id,
      });
      message.ack();
    } catch (err) {
      logError(undefined, "undelivered webhook message not recorded; the queue will retry", err, { tenant: event.tenant, event: event.id });
      message.retry();
    }
  }
}
