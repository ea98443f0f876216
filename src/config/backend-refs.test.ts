import { describe, expect, it } from "vitest";
import { backendRefIssues, idsToLookUp, referencedBackendIds } from "./backend-refs";
import { TenantConfigSchema } from "./schema";

const own = { id: "mine", region: "us-east", url: "https://mine.example/v1", model: "m" };
const fleet = { backends: new Set(["gpu-use1-a", "gpu-use1-b"]), pools: new Set(["use1"]) };
const config = (input: Record<string, unknown>) => TenantConfigSchema.parse(input);

describe("backend references", () => {
  it("lets a config name fleet backends in routes and alert rules, with no backends of its own", () => {
    const c = config({
      models: { chat: { route: ["gpu-use1-a", "gpu-use1-b"] } },
      alerts: {
        webhooks: [{ id: "ops", url: "https://hooks.example/x" }],
        rules: [{ id: "b", kind: "breaker_open", backends: ["gpu-use1-a"] }],
      },
      pools: { use1: { weight: 3 } },
    });
    expect(c.backends).toEqual([]);
    expect([...referencedBackendIds(c)].sort()).toEqual(["gpu-use1-a", "gpu-use1-b"]);
    expect(backendRefIssues(c, fleet)).toEqual([]);
  });

  it("refuses an id neither the config nor the fleet defines, an own backend with a fleet backend's id, and an unknown pool", () => {
    const c = config({
      backends: [{ ...own, id: "gpu-use1-b" }],
      models: { chat: { route: ["gpu-use1-a", "gpu-9"] } },
      pools: { eu: { weight: 2 } },
    });
    expect(backendRefIssues(c, fleet).map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual([
      'backends.0.id: "gpu-use1-b" is a fleet backend\'s id: name it in a route instead, or choose another id',
      'models.chat.route.1: unknown backend "gpu-9"',
      'pools.eu: unknown pool "eu"',
    ]);
  });

  it("asks the fleet about named ids, own backends' ids and pools, each once", () => {
    const c = config({ backends: [own], models: { a: { route: ["mine", "gpu-x"] }, b: { route: ["gpu-x"] } }, pools: { use1: {} } });
    expect(idsToLookUp(c)).toEqual({ backends: ["gpu-x", "mine"], pools: ["use1"] });
  });

  it("refuses a pool on a tenant's own backend, and a share whose max is below its min", () => {
    expect(TenantConfigSchema.safeParse({ backends: [{ ...own, pool: "use1" }], models: { a: { route: ["mine"] } } }).success).toBe(false);
    expect(TenantConfigSchema.safeParse({ models: { a: { route: ["x"] } }, pools: { use1: { min: 5, max: 2 } } }).success).toBe(false);
  });
});
