// The body a webhook receives (docs/operations.md, "Alerts" and "Async generations"): Standard Webhooks'
// envelope ({type, timestamp, data}) around the event, with a link to follow: the tenant on the
// dashboard for an alert, the generation for a generation's end. Pure.
import type { WebhookMessage } from "./webhook-message";

export function webhookPayload(message: WebhookMessage, publicUrl: string | undefined): string {
  const { id, type, ...data } = message.event;
  const base = publicUrl?.replace(/\/+$/, "");
  if (type === "generation.completed" || type === "generation.failed")
    return JSON.stringify({
      type,
      timestamp: data.at,
      data: { ...data, generation: id, url: base ? `${base}/v1/generations/${id}` : null },
    });
  const dashboard = base ? `${base}/admin/dashboard?tenant=${encodeURIComponent(data.tenant)}` : null;
  return JSON.stringify({ type, timestamp: data.at, data: { ...data, dashboard } });
}
