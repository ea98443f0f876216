// What the webhook queue carries: a gate's alert, or the end of an async generation
// (docs/background-work.md, "Async generations"). Both go to one of the tenant's webhooks (config `alerts.webhooks`), signed
// with the tenant's secret, retried and dead-lettered alike (delivery.ts).
import type { AlertEvent, AlertMessage } from "../../gate/core/gate-alerts";

/** An async generation ended. Thin, like OpenAI's webhook events: the receiver GETs the answer. */
export interface GenerationEvent {
  /** The generation's id: it ends once, so this is the receiver's key for dropping a redelivery. */
  id: string;
  type: "generation.completed" | "generation.failed";
  tenant: string;
  /** The HTTP status the request would have been answered with. */
  statusCode: number;
  /** ISO 8601: when it ended. */
  at: string;
}

export type WebhookEvent = AlertEvent | GenerationEvent;

export interface WebhookMessage {
  webhook: AlertMessage["webhook"];
  event: WebhookEvent;
}
