// Alert messages that could not be delivered, in D1: those the alert queue dead-lettered after its
// retries, and those refused outright (a webhook URL sluice will not call). Bounded like dead
// letters: by age, and by count per tenant. The tenant's admins list them; deleting the tenant
// erases them.
import type { WebhookMessage } from "./webhook-message";

export const UNDELIVERED_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
export const UNDELIVERED_MAX_PER_TENANT = 100;

export interface UndeliveredAlert {
  id: number;
  webhookId: string;
  event: WebhookMessage["event"];
  reason: string;
  createdAt: number;
}

export async function recordUndelivered(db: D1Database, message: WebhookMessage, reason: string, now: number): Promise<void> {
  const { tenant } = message.event;
  await db.batch([
    db
      .prepare(`INSERT INTO undelivered_alerts (tenant, webhook_id, event_id, event, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)`)
      .bind(tenant, message.webhook.id, message.event.id, JSON.stringify(message.event), reason.slice(0, 500), now),
    db.prepare(`DELETE FROM undelivered_alerts WHERE created_at < ?`).bind(now - UNDELIVERED_MAX_AGE_MS),
    db
      .prepare(
        `DELETE FROM undelivered_alerts WHERE tenant = ? AND id <= (SELECT id FROM undelivered_alerts WHERE tenant = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      )
      .bind(tenant, tenant, UNDELIVERED_MAX_PER_TENANT),
  ]);
}

/** Newest first. */
export async function listUndelivered(db: D1Database, tenant: string, limit: number): Promise<UndeliveredAlert[]> {
  const rows = await db
    .prepare(`SELECT id, webhook_id, event, reason, created_at FROM undelivered_alerts WHERE tenant = ? ORDER BY id DESC LIMIT ?`)
    .bind(tenant, limit)
    .all<{ id: number; webhook_id: string; event: string; reason: string; created_at: number }>();
  return rows.results.map((r) => ({
    id: r.id,
    webhookId: r.webhook_id,
    event: JSON.parse(r.event) as WebhookMessage["event"],
    reason: r.reason,
    createdAt: r.created_at,
  }));
}

export async function deleteUndelivered(db: D1Database, tenant: string): Promise<void> {
  await db.prepare(`DELETE FROM undelivered_alerts WHERE tenant = ?`).bind(tenant).run();
}
