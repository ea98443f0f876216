import { describe, expect, it } from "vitest";
import { TenantConfigSchema, type TenantConfigInput } from "../../config/schema";
import { buildRoutePlan } from "./plan";
import { testBackend as backend } from "./test-host";

const config = (input: TenantConfigInput) => TenantConfigSchema.parse(input);
const ids = (plan: ReturnType<typeof buildRoutePlan>) => (plan.ok ? plan.entries.map((e) => `${e.alias}:${e.backendId}`) : plan);

const LONDON = { lat: 51.5, lon: -0.1 };
const NEW_YORK = { lat: 40.7, lon: -74 };

describe("buildRoutePlan", () => {
  const base = config({
    backends: [backend("use1", "us-east"), backend("euw1", "eu-west"), backend("apne1", "ap-northeast"), backend("small", "us-east")],
    models: { chat: { route: ["use1", "euw1", "apne1"], fallbacks: ["mini"] }, mini: { route: ["small"] } },
  });
  const input = { alias: "chat", promptTokens: 10, inFlight: () => 0 };

  it("orders by distance to the request's colo, then fallbacks", () => {
    expect(ids(buildRoutePlan(base, { ...input, origin: LONDON }))).toEqual(["chat:euw1", "chat:use1", "chat:apne1", "mini:small"]);
    expect(ids(buildRoutePlan(base, { ...input, origin: NEW_YORK }))).toEqual(["chat:use1", "chat:euw1", "chat:apne1", "mini:small"]);
  });

  it("keeps the configured order without a location, or when pinned", () => {
    expect(ids(buildRoutePlan(base, input))).toEqual(["chat:use1", "chat:euw1", "chat:apne1", "mini:small"]);
    const pinned = config({ ...base, models: { ...base.models, chat: { ...base.models.chat!, order: "pinned" } } });
    expect(ids(buildRoutePlan(pinned, { ...input, origin: LONDON }))).toEqual(["chat:use1", "chat:euw1", "chat:apne1", "mini:small"]);
  });

  it("breaks distance ties by fewest in flight", () => {
    const twin = config({ backends: [backend("a", "us-east"), backend("b", "us-east-2")], models: { chat: { route: ["a", "b"] } } });
    expect(ids(buildRoutePlan(twin, { ...input, origin: NEW_YORK, inFlight: (id) => (id === "a" ? 9 : 1) }))).toEqual(["chat:b", "chat:a"]);
  });

  it("breaks distance ties in a request's affinity order instead, whatever the load, the same for every turn", () => {
    const four = config({
      backends: ["a", "b", "c", "d"].map((id) => backend(id, "us-east")),
      models: { chat: { route: ["a", "b", "c", "d"] } },
    });
    const plan = (affinity: string, inFlight = (_: string) => 0) =>
      ids(buildRoutePlan(four, { ...input, origin: NEW_YORK, affinity, inFlight })) as string[];
    // Loads do not reorder a conversation's backends: it returns to the one that holds its prefix.
    expect(plan("conv-1", (id) => (id === plan("conv-1")[0]!.slice(5) ? 30 : 0))).toEqual(plan("conv-1"));
    // Conversations spread over the backends.
    const firsts = new Set(Array.from({ length: 40 }, (_, i) => plan(`conv-${i}`)[0]));
    expect(firsts.size).toBe(4);
    // A model that asks for none is ordered by load.
    const loadOnly = config({ ...four, models: { chat: { route: ["a", "b", "c", "d"], affinity: false } } });
    expect(
      ids(buildRoutePlan(loadOnly, { ...input, origin: NEW_YORK, affinity: "conv-1", inFlight: (id) => (id === "d" ? 0 : 5) })),
    ).toEqual(["chat:d", "chat:a", "chat:b", "chat:c"]);
    // Distance still comes first.
    const two = config({ backends: [backend("near", "us-east"), backend("far", "eu-west")], models: { chat: { route: ["far", "near"] } } });
    for (let i = 0; i < 10; i++)
      expect(ids(buildRoutePlan(two, { ...input, origin: NEW_YORK, affinity: `c${i}` }))).toEqual(["chat:near", "chat:far"]);
  });

  it("sends requests over the token budget to the configured model, saying so", () => {
    const budget = config({
      ...base,
      models: { ...base.models, chat: { ...base.models.chat!, tokenBudget: { maxTokens: 1000, to: "mini" } } },
    });
    const plan = buildRoutePlan(budget, { ...input, maxTokens: 4000 });
    expect(ids(plan)).toEqual(["mini:small"]);
    expect(plan.ok && plan.degradations).toEqual(["token-budget;from=chat;to=mini"]);
    expect(ids(buildRoutePlan(budget, { ...input, maxTokens: 500 }))).toEqual(["chat:use1", "chat:euw1", "chat:apne1", "mini:small"]);
  });

  it("sends requests to the cheaper model a spend budget past its soft threshold names, saying so", () => {
    const plan = buildRoutePlan(config(base), { ...input, budgetRoute: { alias: "mini", budget: "daily" } });
    expect(ids(plan)).toEqual(["mini:small"]);
    expect(plan.ok && plan.degradations).toEqual(["budget:daily"]);
    // The requested model must exist all the same.
    expect(buildRoutePlan(config(base), { ...input, alias: "nope", budgetRoute: { alias: "mini", budget: "daily" } })).toMatchObject({
      ok: false,
      status: 404,
    });
  });

  it("skips backends whose context is too small, degrading to a larger fallback or answering 400", () => {
    const ctx = config({
      backends: [backend("short", "us-east", { contextTokens: 4096 }), backend("long", "us-east", { contextTokens: 131072 })],
      models: { chat: { route: ["short"], fallbacks: ["big"] }, big: { route: ["long"] }, tiny: { route: ["short"] } },
    });
    const plan = buildRoutePlan(ctx, { ...input, promptTokens: 10_000 });
    expect(ids(plan)).toEqual(["big:long"]);
    expect(plan.ok && plan.degradations).toEqual(["context-window;from=chat;to=big"]);
    expect(buildRoutePlan(ctx, { ...input, alias: "tiny", promptTokens: 10_000 })).toMatchObject({
      ok: false,
      status: 400,
      code: "context_length_exceeded",
      message: expect.stringMatching(/4096 tokens/),
    });
  });

  it("answers 404 for an unknown alias", () => {
    expect(buildRoutePlan(base, { ...input, alias: "nope" })).toMatchObject({ ok: false, status: 404 });
  });
});
