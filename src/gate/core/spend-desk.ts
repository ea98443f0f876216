// What a request may spend and what it did spend, at the gate: at admission its API key's own limits
// (requests and tokens a minute, requests at once) and the budgets of its tenant and key are charged
// (spend-budget.ts); each attempt's report becomes ledger entries (spend-ledger.ts) and adds to the
// request's cost; at its end the budgets are settled to that cost.
import { modelRoute } from "../../config/schema";
import type { Lease } from "./leases";
import type { GateMetrics } from "./metrics";
import type { PlanEntry } from "./plan";
import { type TokenPrice, tokenPrice, worstCost } from "./pricing";
import type { AdmitRequest, AttemptReport, Rejection } from "./protocol";
import { TenantRateLimit } from "./rate-limit";
import { rejections } from "./rejections";
import { type Amount, BudgetBook, type BudgetScope, type BudgetSpent, type BudgetStatus } from "./spend-budget";
import { attemptSpend, dayOf, type SpendEntry } from "./spend-ledger";
import type { TenantPolicies } from "./tenant-policies";

/**
 * Output tokens a request without max_tokens is charged at admission. It settles to what it used;
 * until then a budget holds this much for it.
 */
export const DEFAULT_OUTPUT_CHARGE = 4096;

/** Per-key rate limiters kept at once (a tenant has at most 100 keys; revoked keys' limiters are dropped oldest first). */
const MAX_KEY_LIMITERS = 1_000;

/** The host's part: the ledger's rows and the budgets' spend are stored by it. */
export interface SpendHost {
  recordSpend(entries: SpendEntry[]): void;
  saveBudget(id: string, spent: BudgetSpent): void;
  /**
   * A sharded tenant's budgets are held by its shard 0 (the shell charged the request there before
   * admitting it): the request's end goes there ("release": it never ran).
   */
  settleHeldBudget(holdId: string, actual: Amount | "charged" | "release", keyId?: string): void;
  /** A budget passed its soft threshold: the alert rules look at once (`now`). */
  alertsWanted(now?: boolean): void;
}

/** What the desk holds for an admitted request until it ends. */
interface Hold {
  keyId?: string;
  /** Tokens charged to its key's rate limit. */
  keyTokens?: number;
  /** Its budgets were charged here, or at shard 0 (see SpendHost.settleHeldBudget). */
  budgets?: "here" | "remote";
}

/** A charge shard 0 made for another shard's request: refused, or made (with a cheaper alias to go to, past a soft threshold). */
export type HeldCharge = { ok: true; softRoute?: SoftRoute } | Rejection;

/** A budget past its soft threshold sends requests to `alias`. */
export interface SoftRoute {
  alias: string;
  budget: string;
}

export class SpendDesk {
  readonly budgets: BudgetBook;
  private readonly holds = new Map<string, Hold>();
  /** Requests admitted and not yet ended, per API key (its maxConcurrency). */
  private readonly keyHolds = new Map<string, number>();
  private readonly keyRates = new Map<string, { signature: string; limit: TenantRateLimit }>();

  constructor(
    private readonly policies: TenantPolicies,
    private readonly metrics: GateMetrics,
    private readonly host: SpendHost,
    saved: Iterable<readonly [string, BudgetSpent]> = [],
  ) {
    this.budgets = new BudgetBook(saved, (id, spent) => host.saveBudget(id, spent));
  }

  /** The budgets a request of `key` counts against: the tenant's, then the key's own. */
  scopes(key: AdmitRequest["key"]): BudgetScope[] {
    const scopes = (this.policies.config?.budgets ?? []).map((rule) => ({ id: `tenant/${rule.name}`, rule }));
    for (const rule of key?.budgets ?? []) scopes.push({ id: `key/${key!.id}/${rule.name}`, rule });
    return scopes;
  }

  /** The budget past its soft threshold that sends requests to a cheaper alias, if one is. */
  softRoute(request: Pick<AdmitRequest, "key" | "alias" | "budgetHeld">, now: number): SoftRoute | undefined {
    if (request.budgetHeld) return request.budgetHeld.softRoute;
    for (const scope of this.scopes(request.key)) {
      const to = scope.rule.softRoute;
      // A key's softRoute may name an alias the tenant no longer has: it is passed over.
      if (to === undefined || to === request.alias || !modelRoute(this.policies.config!, to)) continue;
      if (this.budgets.pastSoft(scope, now)) return { alias: to, budget: scope.rule.name };
    }
    return undefined;
  }

  /**
   * Charges an admitted request to its key's limits and its budgets (see the file's comment), or
   * says which refuses it. A request already charged (a resent admission) is not charged again.
   */
  admit(request: AdmitRequest, plan: readonly PlanEntry[], now: number): Rejection | null {
    const key = request.key;
    // Nothing to hold for a request without a key in a tenant without budgets (the common case).
    if (this.holds.has(request.requestId) || (!key && !request.budgetHeld && !this.policies.config?.budgets.length)) return null;
    const shards = Math.max(1, this.policies.config?.limits.shards ?? 1);
    const share = (n: number | undefined) => (n === undefined ? undefined : Math.max(1, Math.ceil(n / shards)));
    const hold: Hold = {};
    if (key) {
      const concurrency = share(key.maxConcurrency);
      if (concurrency !== undefined && (this.keyHolds.get(key.id) ?? 0) >= concurrency) {
        this.metrics.count("rejectedRateLimited");
        return rejections.keyConcurrency(concurrency);
      }
      const limiter = this.keyRate(key.id, share(key.requestsPerMinute), share(key.tokensPerMinute), now);
      if (limiter) {
        const tokens = request.promptTokens + (request.maxTokens ?? DEFAULT_OUTPUT_CHARGE);
        const verdict = limiter.admit(tokens, now);
        if (!verdict.ok) {
          this.metrics.count("rejectedRateLimited");
          return rejections.rateLimited(verdict, "API key");
        }
        hold.keyTokens = tokens;
      }
      hold.keyId = key.id;
    }
    const scopes = this.scopes(key);
    if (request.budgetHeld) hold.budgets = "remote";
    else if (scopes.length > 0) {
      const refused = this.chargeBudgets(request.requestId, scopes, this.estimate(request, plan), now);
      if (refused) {
        this.undo(hold, now);
        return refused;
      }
      hold.budgets = "here";
    }
    if (hold.keyId !== undefined) this.keyHolds.set(hold.keyId, (this.keyHolds.get(hold.keyId) ?? 0) + 1);
    this.holds.set(request.requestId, hold);
    return null;
  }

  /** What a request may cost at most: its prompt and max output (DEFAULT_OUTPUT_CHARGE without one) at the dearest backend of its plan. */
  estimate(request: Pick<AdmitRequest, "promptTokens" | "maxTokens">, plan: readonly PlanEntry[]): Amount {
    const maxOutput = request.maxTokens ?? DEFAULT_OUTPUT_CHARGE;
    const prices = plan.map((e) => this.priceOf(e.backendId));
    return { usd: worstCost(prices, request.promptTokens, maxOutput), tokens: request.promptTokens + maxOutput };
  }

  /** Shard 0 of a sharded tenant: charges another shard's request to the budgets (see SpendHost.settleHeldBudget). */
  chargeHeld(request: Pick<AdmitRequest, "requestId" | "key" | "alias">, estimate: Amount, now: number): HeldCharge {
    // Read before the charge, as an unsharded gate reads it before admitting.
    const softRoute = this.softRoute(request, now);
    return this.chargeBudgets(request.requestId, this.scopes(request.key), estimate, now) ?? { ok: true, softRoute };
  }

  /** Charges `estimate` to `scopes` under `holdId`; the refusal when one of them cannot hold it. */
  private chargeBudgets(holdId: string, scopes: BudgetScope[], estimate: Amount, now: number): Rejection | null {
    const charged = this.budgets.charge(holdId, scopes, estimate, now);
    if (charged.ok) return null;
    this.metrics.count("rejectedBudget");
    return rejections.budgetExceeded(charged.scope, charged.resetsAt, now);
  }

  /** An admitted request never ran (refused from the queue, dropped): its charges go back. */
  refund(requestId: string, now: number): void {
    const hold = this.holds.get(requestId);
    if (!hold) return;
    this.end(requestId, hold);
    this.undo(hold, now);
    if (hold.budgets === "remote") this.host.settleHeldBudget(requestId, "release", hold.keyId);
    else if (hold.budgets === "here") this.budgets.release(requestId);
  }

  /** One attempt's report: its ledger entries are stored and its cost added to the request's. */
  attempt(lease: Lease, report: AttemptReport, now: number): void {
    const entries = attemptSpend(
      {
        day: dayOf(now),
        keyId: lease.keyId ?? "",
        aliasOf: (id) => (lease.plan.find((e) => e.backendId === id) ?? lease.plan[lease.cursor])?.alias ?? "",
        priceOf: (id) => this.priceOf(id),
      },
      report,
    );
    if (entries.length === 0) return;
    const spent = (lease.spent ??= { usd: 0, tokens: 0, estimated: false });
    for (const e of entries) {
      spent.usd += e.usd;
      spent.tokens += e.inputTokens + e.outputTokens;
      if (e.estimated > 0) spent.estimated = true;
      this.metrics.spent(e.alias, e.kind, e.usd);
    }
    this.host.recordSpend(entries);
  }

  /**
   * The request ended: its budgets are charged what it cost. One whose Worker went silent
   * (`reclaimed`) is charged what it was charged at admission: its last attempt's cost is unknown.
   * A budget it moved past its soft threshold has the alert rules look at once.
   */
  settle(lease: Lease, now: number, reclaimed = false): void {
    const hold = this.holds.get(lease.requestId);
    const spent: Amount = lease.spent ?? { usd: 0, tokens: 0 };
    // No hold: nothing was charged (no key, no budgets), or a restart of this gate forgot the
    // charge; its spend still counts on the budgets held here (the tenant's, its key's as last seen).
    if (!hold) return this.settleHeld(lease.requestId, spent, now, lease.keyId);
    this.end(lease.requestId, hold);
    if (hold.keyTokens !== undefined && hold.keyId !== undefined)
      this.keyRates.get(hold.keyId)?.limit.settle(hold.keyTokens, (lease.promptTokens ?? 0) + (lease.tokens ?? 0), now);
    const actual = reclaimed ? "charged" : { usd: spent.usd, tokens: spent.tokens };
    if (hold.budgets === "remote") this.host.settleHeldBudget(lease.requestId, actual, lease.keyId);
    else if (hold.budgets === "here") this.settleHeld(lease.requestId, actual, now);
  }

  /**
   * A charge held here ended: settled to what it cost ("charged": unknown), or "release" (it never
   * ran). A charge this gate no longer holds (it restarted meanwhile) still adds its cost to the
   * budgets of the tenant and of key `keyId`, as far as they are known here.
   */
  settleHeld(holdId: string, actual: Amount | "charged" | "release", now: number, keyId?: string): void {
    if (actual === "release") return this.budgets.release(holdId);
    if (!this.budgets.holding(holdId)) {
      if (actual !== "charged" && this.policies.shard === 0) this.budgets.record(this.restoredScopes(keyId), actual, now);
      return;
    }
    if (this.budgets.settle(holdId, actual, now).length > 0) this.host.alertsWanted(true);
  }

  /** The tenant's budgets, and its keys' that requests were charged to lately: what the budget alert rules watch. */
  alertable(now: number): BudgetStatus[] {
    const scopes = this.scopes(undefined);
    for (const s of this.budgets.charged()) if (s.id.startsWith("key/")) scopes.push(s);
    return scopes.map((s) => this.budgets.status(s, now));
  }

  status(key: AdmitRequest["key"], now: number): BudgetStatus[] {
    return this.scopes(key).map((s) => this.budgets.status(s, now));
  }

  /** The budgets a request of key `keyId` counted against, as far as this gate still knows them. */
  private restoredScopes(keyId: string | undefined): BudgetScope[] {
    const scopes = this.scopes(undefined);
    if (keyId !== undefined) scopes.push(...this.budgets.charged().filter((s) => s.id.startsWith(`key/${keyId}/`)));
    return scopes;
  }

  private priceOf(backendId: string): TokenPrice | null {
    return tokenPrice(this.policies.backend(backendId)?.price);
  }

  private keyRate(keyId: string, requestsPerMinute: number | undefined, tokensPerMinute: number | undefined, now: number) {
    if (requestsPerMinute === undefined && tokensPerMinute === undefined) return null;
    const signature = `${requestsPerMinute}/${tokensPerMinute}`;
    const known = this.keyRates.get(keyId);
    if (known?.signature === signature) return known.limit;
    if (!known && this.keyRates.size >= MAX_KEY_LIMITERS) this.keyRates.delete(this.keyRates.keys().next().value!);
    const limit = new TenantRateLimit({ requestsPerMinute, tokensPerMinute }, now);
    this.keyRates.set(keyId, { signature, limit });
    return limit;
  }

  private end(requestId: string, hold: Hold): void {
    this.holds.delete(requestId);
    if (hold.keyId === undefined) return;
    const n = (this.keyHolds.get(hold.keyId) ?? 1) - 1;
    if (n <= 0) this.keyHolds.delete(hold.keyId);
    else this.keyHolds.set(hold.keyId, n);
  }

  private undo(hold: Hold, now: number): void {
    if (hold.keyTokens !== undefined && hold.keyId !== undefined) this.keyRates.get(hold.keyId)?.limit.refund(hold.keyTokens, now);
  }
}
