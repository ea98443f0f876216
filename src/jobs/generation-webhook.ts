// Tells a webhook that an async generation ended (docs/background-work.md, "Async generations"): the one its request
// named with Sluice-Webhook, else the tenant's alerts.generationWebhook, else none. The message goes
// through the alert queue, so it is signed, retried and dead-lettered like an alert; the event's id
// is the generation's, so a receiver drops the repeat a redelivered job may send.
import type { Env } from "../env";
import type { TenantConfig } from "../config/schema";
import type { GenerationObject } from "./generations";
import { logError } from "../log";

/** The Sluice-Webhook value that asks for no webhook, whatever the tenant's default. */
export const NO_WEBHOOK = "none";

/** What a request's Sluice-Webhook header names, checked against the tenant's webhooks: undefined when it names none of them. */
export function namedWebhook(header: string, config: TenantConfig): string | undefined {
  if (header === NO_WEBHOOK) return header;
  return config.alerts.webhooks.some((w) => w.id === header) ? header : undefined;
}

/** Queues the message that `generation` ended, if a webhook is to be told. `named`: what its request named (null: the default). */
export async function announceEnd(env: Env, config: TenantConfig, generation: GenerationObject & { tenant: string }, named: string | null) {
  const id = named ?? config.alerts.generationWebhook;
  if (id === undefined || id === NO_WEBHOOK || !generation.response) return;
  const webhook = config.alerts.webhooks.find((w) => w.id === id);
  if (!webhook) {
    // Removed from the config since the request named it.
    logError(undefined, "generation webhook no longer configured; not told", id, { tenant: generation.tenant, generation: generation.id });
    return;
  }
  const event = {
    id: generation.id,
    type: generation.status === "completed" ? ("generation.completed" as const) : ("generation.failed" as const),
    tenant: generation.tenant,
    statusCode: generation.response.status_code,
    at: new Date((generation.completed_at ?? Math.floor(Date.now() / 1000)) * 1000).toISOString(),
  };
  await env.ALERTS.send({ webhook: { id: webhook.id, url: webhook.url }, event }, { contentType: "json" });
}
