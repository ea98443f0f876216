import { describe, expect, it } from "vitest";
import type { AlertMessage } from "../../gate/core/gate-alerts";
import { webhookPayload } from "./payload";
import type { WebhookMessage } from "./webhook-message";

const message: AlertMessage = {
  webhook: { id: "ops", url: "https://hooks.example.com/sluice" },
  event: {
    id: "evt-1",
    type: "alert.resolved",
    tenant: "a&b",
    shard: 0,
    rule: "gpu-down",
    kind: "breaker_open",
    backend: "use1-a",
    state: "resolved",
    since: "2026-12-02T03:00:00.000Z",
    at: "2026-12-02T03:04:05.000Z",
    figures: { breaker: "closed" },
    summary: "The circuit breaker of backend use1-a is closed.",
  },
};

describe("webhook payload", () => {
  it("wraps the event as Standard Webhooks do, its id kept for the header, with a dashboard link", () => {
    const body = JSON.parse(webhookPayload(message, "https://sluice.example.com/"));
    const { id: _id, type: _type, ...data } = message.event;
    expect(body).toEqual({
      type: "alert.resolved",
      timestamp: "2026-12-02T03:04:05.000Z",
      data: { ...data, dashboard: "https://sluice.example.com/admin/dashboard?tenant=a%26b" },
    });
    expect(body.data).not.toHaveProperty("id");
  });

  it("has no link without a public URL", () => {
    expect(JSON.parse(webhookPayload(message, undefined)).data.dashboard).toBeNull();
  });

  it("tells a generation's end by its id, with the link to GET its answer", () => {
    const ended: WebhookMessage = {
      webhook: { id: "ops", url: "https://hooks.example.com/sluice" },
      event: { id: "gen_1", type: "generation.failed", tenant: "t", statusCode: 502, at: "2026-12-02T03:04:05.000Z" },
    };
    expect(JSON.parse(webhookPayload(ended, "https://sluice.example.com"))).toEqual({
      type: "generation.failed",
      timestamp: "2026-12-02T03:04:05.000Z",
      data: {
        tenant: "t",
        statusCode: 502,
        at: "2026-12-02T03:04:05.000Z",
        generation: "gen_1",
        url: "https://sluice.example.com/v1/generations/gen_1",
      },
    });
  });
});
