import { describe, expect, it } from "vitest";
import { TenantConfigSchema, describeIssues } from "./schema";
import { backendRefIssues } from "./backend-refs";

const backends = [{ id: "a", region: "us-east", url: "https://a.example/v1", model: "m" }];
const noFleet = { backends: new Set<string>(), pools: new Set<string>() };
/** The schema's issues, then (for a config of the right shape) its backend ids' against an empty fleet. */
const issuesOf = (input: unknown) => {
  const parsed = TenantConfigSchema.safeParse(input);
  if (!parsed.success) return describeIssues(parsed.error);
  const issues = backendRefIssues(parsed.data, noFleet);
  return issues.length === 0 ? "" : describeIssues({ issues });
};
const problems = (models: Record<string, unknown>) => issuesOf({ backends, models });

describe("tenant config: model routes", () => {
  it("refuses a fallback cycle, naming the alias and the cycle", () => {
    expect(
      problems({
        a1: { route: ["a"], fallbacks: ["a2"] },
        a2: { route: ["a"], fallbacks: ["a3"] },
        a3: { route: ["a"], fallbacks: ["a1"] },
      }),
    ).toBe("models.a1.fallbacks: fallback cycle: a1 -> a2 -> a3 -> a1");
  });

  it("accepts shared fallbacks that form no cycle", () => {
    expect(problems({ a1: { route: ["a"], fallbacks: ["a2", "a3"] }, a2: { route: ["a"], fallbacks: ["a3"] }, a3: { route: ["a"] } })).toBe(
      "",
    );
  });

  it("refuses an alias without a backend, and a route to a backend the config does not define", () => {
    expect(problems({ chat: { route: [] } })).toMatch(/^models\.chat\.route: /);
    expect(problems({ chat: { route: ["a", "gpu-9"] } })).toBe('models.chat.route.1: unknown backend "gpu-9"');
  });

  it("refuses a model that falls back to itself", () => {
    expect(problems({ chat: { route: ["a"], fallbacks: ["chat"] } })).toBe("models.chat.fallbacks.0: a model cannot fall back to itself");
  });
});

describe("tenant config: alerts", () => {
  const parse = (alerts: unknown) => issuesOf({ backends, models: { chat: { route: ["a"] } }, alerts });
  const hook = { id: "ops", url: "https://hooks.example/sluice" };

  it("defaults to no webhooks, no rules and a five-minute cooldown", () => {
    const parsed = TenantConfigSchema.parse({ backends, models: { chat: { route: ["a"] } } });
    expect(parsed.alerts).toEqual({ webhooks: [], rules: [], cooldownSeconds: 300 });
  });

  it("accepts each kind of rule", () => {
    expect(
      parse({
        webhooks: [hook],
        rules: [
          { id: "b", kind: "breaker_open", backends: ["a"] },
          { id: "q", kind: "queue_saturated", depthShare: 0.8, forSeconds: 60 },
          { id: "r", kind: "retry_budget_exhausted" },
          { id: "d", kind: "dead_letters", perMinute: 5, webhooks: ["ops"] },
          { id: "t", kind: "ttft_p99", thresholdMs: 2000 },
        ],
      }),
    ).toBe("");
  });

  it("names what is wrong: unknown kinds, webhooks and backends, duplicates, rules with no webhook", () => {
    expect(parse({ webhooks: [hook], rules: [{ id: "x", kind: "gpu_on_fire" }] })).toMatch(/^alerts\.rules\.0\.kind: /);
    expect(parse({ webhooks: [hook], rules: [{ id: "x", kind: "breaker_open", webhooks: ["pager"] }] })).toBe(
      'alerts.rules.0.webhooks.0: unknown webhook "pager"',
    );
    expect(parse({ webhooks: [hook], rules: [{ id: "x", kind: "breaker_open", backends: ["gpu-9"] }] })).toBe(
      'alerts.rules.0.backends.0: unknown backend "gpu-9"',
    );
    expect(parse({ webhooks: [hook, hook] })).toBe('alerts.webhooks.1.id: duplicate webhook id "ops"');
    expect(
      parse({
        webhooks: [hook],
        rules: [
          { id: "x", kind: "retry_budget_exhausted" },
          { id: "x", kind: "retry_budget_exhausted" },
        ],
      }),
    ).toBe('alerts.rules.1.id: duplicate rule id "x"');
    expect(parse({ rules: [{ id: "x", kind: "retry_budget_exhausted" }] })).toBe(
      "alerts.webhooks: rules need at least one webhook to notify",
    );
    expect(parse({ webhooks: [hook], rules: [{ id: "q", kind: "queue_saturated" }] })).toBe(
      "alerts.rules.0: set depthShare, waitMs or both",
    );
    expect(parse({ webhooks: [{ id: "ops", url: "ftp://hooks.example" }] })).toBe("alerts.webhooks.0.url: must be an http(s) URL");
  });
});
