import { describe, expect, it } from "vitest";
import { type TenantConfig, TenantConfigSchema } from "./schema";
import { operatorFieldsChanged, redactBackends, withOperatorFields } from "./operator-fields";

const config: TenantConfig = TenantConfigSchema.parse({
  backends: [
    { id: "a", region: "us-east", url: "https://a.example/v1", model: "m", apiKey: "secret" },
    { id: "b", region: "eu-west", url: "https://b.example/v1", model: "m" },
  ],
  models: { chat: { route: ["a"], fallbacks: ["alt"] }, alt: { route: ["b"] } },
});

describe("operatorFieldsChanged", () => {
  it("is empty for changes of routes, fallbacks and policies", () => {
    const next = {
      ...config,
      models: { ...config.models, chat: { ...config.models.chat!, route: ["b", "a"], fallbacks: [] } },
      retry: { ...config.retry, maxAttempts: 5 },
    };
    expect(operatorFieldsChanged(config, next)).toEqual([]);
  });

  it("names each changed limit, and backends as a whole", () => {
    const next = {
      ...config,
      limits: { ...config.limits, maxConcurrency: 1, requestsPerMinute: 60 },
      backends: [{ ...config.backends[0]!, url: "https://elsewhere.example/v1" }, config.backends[1]!],
    };
    expect(operatorFieldsChanged(config, next).sort()).toEqual(["backends", "limits.maxConcurrency", "limits.requestsPerMinute"]);
  });
});

describe("withOperatorFields", () => {
  it("keeps the tenant's fields of one config and the operator's of another", () => {
    const older = {
      ...config,
      models: { chat: { ...config.models.chat!, fallbacks: [] }, alt: config.models.alt! },
      limits: { ...config.limits, maxQueue: 1 },
    };
    const restored = withOperatorFields(older, config);
    expect(restored.models).toEqual(older.models);
    expect(restored.limits).toEqual(config.limits);
    expect(restored.backends).toEqual(config.backends);
  });
});

describe("redactBackends", () => {
  it("leaves out URLs and credentials, keeps ids and traits", () => {
    const seen = redactBackends(config);
    expect(seen.backends).toEqual([
      { id: "a", region: "us-east", model: "m", maxConcurrency: 32, resume: false, adaptiveConcurrency: false },
      { id: "b", region: "eu-west", model: "m", maxConcurrency: 32, resume: false, adaptiveConcurrency: false },
    ]);
    expect(JSON.stringify(seen)).not.toMatch(/secret|example/);
    expect(redactBackends({ models: {} })).toEqual({ models: {} });
  });
});
