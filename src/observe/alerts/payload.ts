// The body a webhook receives (README, "Alerts"): Standard Webhooks' envelope ({type, timestamp,
// data}) around the gate's event, with a link to the tenant on the dashboard. Pure.
import type { AlertMessage } from "../../gate/core/gate-alerts";

export function alertPayload(message: AlertMessage, publicUrl: string | undefined): string {
  const { id: _id, type, ...data } = message.event;
  const dashboard = publicUrl ? `${publicUrl.replace(/\/+$/, "")}/admin/dashboard?tenant=${encodeURIComponent(data.tenant)}` : null;
  return JSON.stringify({ type, timestamp: data.at, data: { ...data, dashboard } });
}
