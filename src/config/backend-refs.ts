// Which backend ids a tenant config names beyond its own backends (fleet backends, config/fleet.ts),
// and what is wrong with them once the fleet is known: an id neither the config nor the fleet
// defines, an own backend that takes a fleet backend's id, a share of a pool that does not exist.
import type { TenantConfig } from "./schema";

export interface ConfigIssue {
  path: (string | number)[];
  message: string;
}

/** What the fleet holds of the ids a config names. */
export interface FleetIds {
  backends: ReadonlySet<string>;
  pools: ReadonlySet<string>;
}

/** Backend ids the config's routes and alert rules name that are not its own backends. */
export function referencedBackendIds(config: TenantConfig): Set<string> {
  const own = new Set(config.backends.map((b) => b.id));
  const named = new Set<string>();
  for (const model of Object.values(config.models)) for (const id of model.route) if (!own.has(id)) named.add(id);
  for (const rule of config.alerts.rules)
    if (rule.kind === "breaker_open") for (const id of rule.backends ?? []) if (!own.has(id)) named.add(id);
  return named;
}

/** The ids the fleet is asked about: those the config names, its own backends' (none may be a fleet backend's) and its pools. */
export function idsToLookUp(config: TenantConfig): { backends: string[]; pools: string[] } {
  return {
    backends: [...new Set([...referencedBackendIds(config), ...config.backends.map((b) => b.id)])],
    pools: Object.keys(config.pools),
  };
}

export function backendRefIssues(config: TenantConfig, fleet: FleetIds): ConfigIssue[] {
  const own = new Set(config.backends.map((b) => b.id));
  const known = (id: string) => own.has(id) || fleet.backends.has(id);
  const issues: ConfigIssue[] = [];
  config.backends.forEach((b, i) => {
    if (fleet.backends.has(b.id))
      issues.push({
        path: ["backends", i, "id"],
        message: `"${b.id}" is a fleet backend's id: name it in a route instead, or choose another id`,
      });
  });
  for (const [alias, model] of Object.entries(config.models))
    model.route.forEach((id, i) => {
      if (!known(id)) issues.push({ path: ["models", alias, "route", i], message: `unknown backend "${id}"` });
    });
  config.alerts.rules.forEach((rule, i) => {
    if (rule.kind === "breaker_open")
      rule.backends?.forEach((id, j) => {
        if (!known(id)) issues.push({ path: ["alerts", "rules", i, "backends", j], message: `unknown backend "${id}"` });
      });
  });
  for (const pool of Object.keys(config.pools))
    if (!fleet.pools.has(pool)) issues.push({ path: ["pools", pool], message: `unknown pool "${pool}"` });
  return issues;
}
