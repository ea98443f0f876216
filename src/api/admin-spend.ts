// GET /admin/tenants/{t}/spend: what the tenant spent (README, "Spend and budgets"), from the
// ledgers of its gates, added up by day, API key, model alias and backend as asked, and where its
// budgets and its keys' budgets stand. A tenant admin key reads its own tenant's only (admin-scope.ts).
import { Hono } from "hono";
import type { AppEnv } from "./context";
import { errorResponse } from "../stream/errors";
import { readTenantConfig } from "../config/store";
import { apiKeys } from "../config/keyring";
import { gatesOf } from "../admission/gate-client";
import { tenantNotFound } from "./admin-scope";
import { SPEND_DIMENSIONS, type SpendDimension, spendReport, validDay } from "../observe/spend-report";
import { LEDGER_RETENTION_DAYS } from "../gate/spend-rows";
import { resolveTenantConfig } from "../config/fleet";
import type { KeyRef } from "../gate/core/protocol";
import type { BudgetStatus } from "../gate/core/spend-budget";

const today = () => new Date().toISOString().slice(0, 10);

export const spendRoute = new Hono<AppEnv>().get("/", async (c) => {
  const tenant = c.req.param("tenant")!;
  const stored = await readTenantConfig(c.env, tenant);
  if (!stored) return tenantNotFound(tenant);
  const from = c.req.query("from") ?? today();
  const to = c.req.query("to") ?? today();
  if (!validDay(from) || !validDay(to)) return errorResponse(400, "invalid_date", "from and to are days: YYYY-MM-DD (UTC).");
  if (from > to) return errorResponse(400, "invalid_date", "from must not be after to.");
  if (Date.parse(to) - Date.parse(from) > LEDGER_RETENTION_DAYS * 86_400_000)
    return errorResponse(400, "invalid_date", `The ledger keeps ${LEDGER_RETENTION_DAYS} days: ask for at most that many.`);
  const asked = (c.req.query("group_by") ?? "day").split(",").filter((d) => d !== "");
  const unknown = asked.find((d) => !(SPEND_DIMENSIONS as readonly string[]).includes(d));
  if (unknown !== undefined)
    return errorResponse(400, "invalid_group_by", `group_by takes ${SPEND_DIMENSIONS.join(", ")} (comma-separated); got "${unknown}".`);
  const groupBy = [...new Set(asked)] as SpendDimension[];

  const keys = await apiKeys.records(c.env, tenant);
  const budgeted: KeyRef[] = keys.filter((k) => k.record.limits?.budgets?.length).map((k) => ({ id: k.id, ...k.record.limits }));
  const gates = gatesOf(c.env.TENANT_GATE, tenant, stored.limits.shards);
  // Every gate keeps the ledger of the requests it admitted; the budgets are held by the first (shard 0).
  const parts = await Promise.all(gates.map((g, shard) => g.spend(from, to, shard === 0 ? budgeted : [])));
  const report = spendReport(
    parts.flatMap((p) => p.rows),
    groupBy,
  );
  const names = new Map(keys.map((k) => [k.id, k.record.name]));
  const config = await resolveTenantConfig(c.env, stored);
  return c.json({
    object: "spend",
    tenant,
    from,
    to,
    currency: "USD",
    group_by: groupBy,
    total: report.total,
    data: report.data.map((g) => (g.key === undefined ? g : { ...g, key_name: names.get(g.key) ?? null })),
    budgets: parts[0]!.budgets.map((b) => budgetView(b, names)),
    // Their spend counts as 0: set a price (backends[].price) to count it.
    unpriced_backends: config.backends.filter((b) => b.price === undefined).map((b) => b.id),
  });
});

function budgetView(b: BudgetStatus, names: Map<string, string | undefined>) {
  const [scope, keyId] = b.id.split("/");
  return {
    scope,
    ...(scope === "key" ? { key: keyId, key_name: names.get(keyId!) ?? null } : {}),
    name: b.rule.name,
    period: b.rule.period,
    unit: b.rule.unit,
    limit: b.rule.limit,
    spent: b.spent,
    held: b.held,
    ...(b.rule.softAt !== undefined ? { soft_at: b.rule.softAt } : {}),
    period_start: new Date(b.periodStart).toISOString(),
    resets_at: new Date(b.resetsAt).toISOString(),
  };
}
