// Why an attempt went to its backend, for the request's log line (and the operator reading it).
import { modelRoute, type TenantConfig } from "../../config/schema";
import type { PlanEntry } from "./plan";

/**
 * affinity: the backend the request's session or prompt prefix ranks first among the nearest with
 * room (affinity.ts); nearest: the nearest with room, fewest in flight among equals; pinned: the
 * first with room in the route's own order; least_loaded: passed over a backend of the model whose
 * server reports a queue (for one that reports a shorter one, or because the queue holds it full); fallback: a fallback model's backend (the
 * requested model's could not take it); retry: a later attempt of the requested model; hedge: a
 * second attempt raced against a late first token (hedging.ts).
 */
export type RouteReason = "affinity" | "nearest" | "pinned" | "least_loaded" | "fallback" | "retry" | "hedge";

/** Why the attempt at plan index `cursor` went there: a first attempt (`byLoad`: the picker passed over a longer server queue) or a retry. */
export function routeReason(
  config: TenantConfig,
  plan: readonly PlanEntry[],
  cursor: number,
  first: { affinity: boolean; byLoad: boolean } | null,
): RouteReason {
  const alias = plan[cursor]?.alias;
  if (alias !== plan[0]?.alias) return "fallback";
  if (!first) return "retry";
  if (first.byLoad) return "least_loaded";
  const model = alias === undefined ? undefined : modelRoute(config, alias);
  if (model?.order === "pinned") return "pinned";
  return first.affinity && model?.affinity ? "affinity" : "nearest";
}
