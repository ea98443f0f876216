import { describe, expect, it } from "vitest";
import type { AlertMessage } from "../../gate/core/gate-alerts";
import { alertPayload } from "./payload";

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

describe("alert payload", () => {
  it("wraps the event as Standard Webhooks do, its id kept for the header, with a dashboard link", () => {
    const body = JSON.parse(alertPayload(message, "https://sluice.example.com/"));
    const { id: _id, type: _type, ...data } = message.event;
    expect(body).toEqual({
      type: "alert.resolved",
      timestamp: "2026-12-02T03:04:05.000Z",
      data: { ...data, dashboard: "https://sluice.example.com/admin/dashboard?tenant=a%26b" },
    });
    expect(body.data).not.toHaveProperty("id");
  });

  it("has no link without a public URL", () => {
    expect(JSON.parse(alertPayload(message, undefined)).data.dashboard).toBeNull();
  });
});
