import { describe, expect, it } from "vitest";
import { TenantConfigSchema, describeIssues } from "./schema";

const backends = [{ id: "a", region: "us-east", url: "https://a.example/v1", model: "m" }];
const problems = (models: Record<string, unknown>) => {
  const parsed = TenantConfigSchema.safeParse({ backends, models });
  return parsed.success ? "" : describeIssues(parsed.error);
};

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
