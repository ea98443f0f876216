// The route plan: which backends a request may use, in order. A model alias's own backends come
// first (nearest region first unless the tenant pinned the order; among equals, fewest in flight,
// or the order a request's affinity fixes),
// then each fallback model's. Degradations (token budget, context window) reroute up front.
import { modelRoute, type BackendConfig, type TenantConfig } from "../../config/schema";
import { distanceKm, regionCoordinates, type Coordinates } from "./regions";
import { affinityScore } from "./affinity";

export interface PlanEntry {
  backendId: string;
  /** The model alias this entry serves (the requested one or a fallback). */
  alias: string;
}

export interface PlanInput {
  alias: string;
  /** What the request asks for: only backends that serve it are in its plan (chat when absent). */
  kind?: "chat" | "embeddings";
  origin?: Coordinates;
  promptTokens: number;
  maxTokens?: number;
  inFlight: (backendId: string) => number;
  /** The request's affinity key: equally near backends in the order it fixes, not by load (affinity.ts). */
  affinity?: string;
  /** A budget past its soft threshold sends the request to this alias of the tenant's (SpendDesk.softRoute). */
  budgetRoute?: { alias: string; budget: string };
}

export type RoutePlan =
  | { ok: true; entries: PlanEntry[]; degradations: string[] }
  | { ok: false; status: 400 | 404; code: string; message: string };

export function buildRoutePlan(config: TenantConfig, input: PlanInput): RoutePlan {
  const requested = modelRoute(config, input.alias);
  if (!requested)
    return { ok: false, status: 404, code: "model_not_found", message: `The model "${input.alias}" does not exist for this tenant.` };

  const degradations: string[] = [];
  let alias = input.alias;
  // A spend budget past its soft threshold sends the request to a cheaper alias (core/spend-desk.ts).
  if (input.budgetRoute) {
    degradations.push(`budget:${input.budgetRoute.budget}`);
    alias = input.budgetRoute.alias;
  }
  const budget = modelRoute(config, alias)?.tokenBudget;
  if (budget && input.maxTokens !== undefined && input.maxTokens > budget.maxTokens) {
    degradations.push(`token-budget;from=${alias};to=${budget.to}`);
    alias = budget.to;
  }

  const { backends } = indexOf(config);
  const entries: PlanEntry[] = [];
  const seenBackends = new Set<string>();
  const seenAliases = new Set<string>();
  let largestContext = 0;
  let tooLong = 0;

  const visit = (modelAlias: string): void => {
    if (seenAliases.has(modelAlias)) return;
    seenAliases.add(modelAlias);
    const model = modelRoute(config, modelAlias);
    if (!model) return;
    const ordered =
      model.order === "pinned"
        ? model.route
        : orderByProximity(model.route, config, model.affinity ? input : { ...input, affinity: undefined });
    for (const id of ordered) {
      const b = backends.get(id);
      if (!b || seenBackends.has(id) || (b.serves && !b.serves.includes(input.kind ?? "chat"))) continue;
      if (b.contextTokens !== undefined) {
        largestContext = Math.max(largestContext, b.contextTokens);
        if (input.promptTokens >= b.contextTokens) {
          tooLong++;
          continue;
        }
      }
      seenBackends.add(id);
      entries.push({ backendId: id, alias: modelAlias });
    }
    for (const f of model.fallbacks) visit(f);
  };
  visit(alias);

  if (entries.length === 0 && tooLong > 0) {
    return {
      ok: false,
      status: 400,
      code: "context_length_exceeded",
      message: `The prompt is about ${input.promptTokens} tokens, more than the largest context window (${largestContext} tokens) of model "${input.alias}" and its fallbacks.`,
    };
  }
  if (entries.length === 0)
    return {
      ok: false,
      status: 400,
      code: "model_not_served",
      message: `No backend of model "${input.alias}" or its fallbacks serves ${input.kind ?? "chat"} (backends[].serves).`,
    };
  if (tooLong > 0 && entries[0] && entries[0].alias !== alias) degradations.push(`context-window;from=${alias};to=${entries[0].alias}`);
  return { ok: true, entries, degradations };
}

/** What a plan needs of a config that does not change per request; made once per config object. */
interface ConfigIndex {
  backends: Map<string, BackendConfig>;
  coordinates: Map<string, Coordinates | undefined>;
}

const indexes = new WeakMap<TenantConfig, ConfigIndex>();

function indexOf(config: TenantConfig): ConfigIndex {
  let index = indexes.get(config);
  if (!index) {
    index = {
      backends: new Map(config.backends.map((b) => [b.id, b])),
      coordinates: new Map(config.backends.map((b) => [b.id, regionCoordinates(b.region, b.lat, b.lon)])),
    };
    indexes.set(config, index);
  }
  return index;
}

function orderByProximity(route: string[], config: TenantConfig, input: PlanInput): string[] {
  const { coordinates } = indexOf(config);
  const distance = (id: string): number => {
    const at = coordinates.get(id);
    if (!input.origin || !at) return Number.MAX_SAFE_INTEGER;
    // Round to 500 km bands: backends in one metro area count as equally near.
    return Math.round(distanceKm(input.origin, at) / 500);
  };
  // Among equals: fewest in flight, or, for a request with an affinity, the backends in its own order
  // (the same for every turn of its conversation; a full backend is passed over by the picker).
  const { affinity } = input;
  const order = (id: string) => (affinity === undefined ? input.inFlight(id) : -affinityScore(affinity, id));
  return route
    .map((id, index) => ({ id, index, d: distance(id), order: order(id) }))
    .sort((a, b) => a.d - b.d || a.order - b.order || a.index - b.index)
    .map((x) => x.id);
}
