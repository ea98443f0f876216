// A sharded tenant's budgets are held once, by its shard 0's gate, not once per shard: another
// shard charges a request there before admitting it, and tells it the request's end. A charge that
// cannot reach shard 0 is refused (503): a budget that could be passed while its holder is away would
// not hold. A settle that cannot reach it is tried once more; a charge never settled is taken as
// spent when it expires there (core/spend-budget.ts, HOLD_TTL_MS).
import type { TenantGate } from "./tenant-gate";
import type { GateCore } from "./core/gate-core";
import type { AdmitRequest, Rejection } from "./core/protocol";
import type { Amount } from "./core/spend-budget";
import { buildRoutePlan } from "./core/plan";
import { gateName } from "./gate-name";
import { logError } from "../log";

export class BudgetLink {
  constructor(
    private readonly gates: DurableObjectNamespace<TenantGate>,
    /** This gate's tenant and shard, once known. */
    private readonly identity: () => { tenant: string; shard: number } | null,
  ) {}

  /**
   * The request to admit: as given, or charged at shard 0 (`budgetHeld`) when this gate is another
   * shard of a tenant with budgets for it; or shard 0's refusal.
   */
  async charge(core: GateCore, request: AdmitRequest): Promise<{ request: AdmitRequest } | { refused: Rejection }> {
    const who = this.identity();
    const config = core.config;
    if (!who || who.shard === 0 || !config || request.budgetHeld || core.spend.scopes(request.key).length === 0) return { request };
    const plan = buildRoutePlan(config, { ...request, inFlight: () => 0 });
    // A request the plan refuses is refused by the core, with the plan's answer: nothing to charge.
    if (!plan.ok) return { request };
    const estimate = core.spend.estimate(request, plan.entries);
    try {
      const held = await this.holder(who.tenant).chargeBudget(
        { requestId: request.requestId, key: request.key, alias: request.alias },
        estimate,
      );
      if ("kind" in held) return { refused: held };
      return { request: { ...request, budgetHeld: held.softRoute ? { softRoute: held.softRoute } : {} } };
    } catch (err) {
      logError(request.requestId, "the tenant's budget holder (shard 0) is unreachable", err);
      const refused: Rejection = {
        kind: "reject",
        status: 503,
        code: "gate_unavailable",
        message: "The gate holding this tenant's budgets could not be reached. Retry later.",
        retryAfterSec: 1,
      };
      return { refused };
    }
  }

  /** The end of a request charged at shard 0 (see SpendHost.settleHeldBudget). */
  settle(holdId: string, actual: Amount | "charged" | "release", keyId?: string): void {
    const who = this.identity();
    if (!who) return;
    const send = () => this.holder(who.tenant).settleBudget(holdId, actual, keyId);
    void send()
      .catch(send)
      .catch((err: unknown) => logError(holdId, "a budget settle did not reach shard 0; its charge stands until it expires", err));
  }

  private holder(tenant: string): DurableObjectStub<TenantGate> {
    return this.gates.get(this.gates.idFromName(gateName(tenant, 0)));
  }
}
