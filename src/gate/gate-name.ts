// The Durable Object name of a tenant's gate: the Worker picks a shard (admission/gate-naming.ts),
// and a shard's gate reaches shard 0, which holds the tenant's budgets (budget-link.ts).

/** The Durable Object name of a tenant's shard. Shard 0 keeps the tenant's own name. */
export function gateName(tenant: string, shard: number): string {
  return shard === 0 ? tenant : `${tenant}:shard-${shard}`;
}
