import { describe, expect, it } from "vitest";
import { routeReason } from "./route-reason";
import { testConfig } from "./test-host";

const plan = [
  { backendId: "a", alias: "chat" },
  { backendId: "b", alias: "chat" },
  { backendId: "c", alias: "small" },
];
const nearest = testConfig({ models: { chat: { route: ["a", "b"], fallbacks: ["small"] }, small: { route: ["c"] } } });
const first = (affinity: boolean, byLoad = false) => ({ affinity, byLoad });

describe("routeReason", () => {
  it("names a fallback model's backend, a retry and a pass-over for a shorter server queue", () => {
    expect(routeReason(nearest, plan, 2, first(true))).toBe("fallback");
    expect(routeReason(nearest, plan, 2, null)).toBe("fallback");
    expect(routeReason(nearest, plan, 1, null)).toBe("retry");
    expect(routeReason(nearest, plan, 1, first(true, true))).toBe("least_loaded");
  });

  it("tells an affinity pick from a plain nearest one, and a pinned route from both", () => {
    expect(routeReason(nearest, plan, 0, first(true))).toBe("affinity");
    expect(routeReason(nearest, plan, 0, first(false))).toBe("nearest");
    const noAffinity = testConfig({ models: { chat: { route: ["a", "b"], affinity: false } } });
    expect(routeReason(noAffinity, plan, 0, first(true))).toBe("nearest");
    const pinned = testConfig({ models: { chat: { route: ["a", "b"], order: "pinned" } } });
    expect(routeReason(pinned, plan, 0, first(true))).toBe("pinned");
  });
});
