// Stored responses of the OpenAI Responses API, per tenant, in D1: the response object, and the
// conversation it ended (chat messages: what came before, the input, the answer), which a request
// naming it as previous_response_id continues. Bounded: kept STORED_RESPONSE_TTL_MS, at most
// MAX_STORED_RESPONSES a tenant (the oldest go first), MAX_STORED_RESPONSE_BYTES each (a larger one
// is answered but not stored: GET then answers 404). Erased with the tenant.
import type { ChatMessage } from "../config/chat-request";

export const STORED_RESPONSE_TTL_MS = 30 * 86_400_000;
export const MAX_STORED_RESPONSES = 10_000;
export const MAX_STORED_RESPONSE_BYTES = 1024 * 1024;

export class StoredResponses {
  constructor(
    private readonly db: D1Database,
    readonly tenant: string,
  ) {}

  /** Stores a response and its conversation; false when it is too large to keep. */
  async save(id: string, conversation: ChatMessage[], response: Record<string, unknown>, now: number): Promise<boolean> {
    const conversationJson = JSON.stringify(conversation);
    const responseJson = JSON.stringify(response);
    if (conversationJson.length + responseJson.length > MAX_STORED_RESPONSE_BYTES) return false;
    await this.db.batch([
      this.db.prepare(`DELETE FROM responses WHERE tenant = ? AND expires_at <= ?`).bind(this.tenant, now),
      this.db
        .prepare(`INSERT OR REPLACE INTO responses (id, tenant, created_at, expires_at, conversation, response) VALUES (?, ?, ?, ?, ?, ?)`)
        .bind(id, this.tenant, now, now + STORED_RESPONSE_TTL_MS, conversationJson, responseJson),
      // Over the bound, the oldest go.
      this.db
        .prepare(
          `DELETE FROM responses WHERE tenant = ?1 AND id IN (
             SELECT id FROM responses WHERE tenant = ?1 ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?2)`,
        )
        .bind(this.tenant, MAX_STORED_RESPONSES),
    ]);
    return true;
  }

  async response(id: string, now: number): Promise<Record<string, unknown> | null> {
    return (await this.entry(id, now))?.response ?? null;
  }

  /** The response and its conversation. */
  async entry(id: string, now: number): Promise<{ response: Record<string, unknown>; conversation: ChatMessage[] } | null> {
    const row = await this.db
      .prepare(`SELECT response, conversation FROM responses WHERE tenant = ? AND id = ? AND expires_at > ?`)
      .bind(this.tenant, id, now)
      .first<{ response: string; conversation: string }>();
    return (
      row && { response: JSON.parse(row.response) as Record<string, unknown>, conversation: JSON.parse(row.conversation) as ChatMessage[] }
    );
  }

  async delete(id: string): Promise<boolean> {
    const removed = await this.db.prepare(`DELETE FROM responses WHERE tenant = ? AND id = ?`).bind(this.tenant, id).run();
    return removed.meta.changes > 0;
  }

  async deleteAll(): Promise<void> {
    await this.db.prepare(`DELETE FROM responses WHERE tenant = ?`).bind(this.tenant).run();
  }
}
