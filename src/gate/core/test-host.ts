// A GateHost for the core's unit tests: records what the core asks of it, keeps the journal in
// memory, and plays the shell's part in the ticket protocol (which tickets have an open call).
import { type BackendConfig, TenantConfigSchema, type TenantConfig, type TenantConfigInput } from "../../config/schema";
import type { BackendView } from "./backend-picker";
import { CircuitBreaker, type BreakerSnapshot } from "./breaker";
import { GateCore } from "./gate-core";
import type { EntryKind, EntrySnapshot, EntryState, JournalLimits } from "./journal-entry";
import type { Lease } from "./leases";
import type { GateHost, JournalPort } from "./ports";
import type { SpendEntry } from "./spend-ledger";
import type { Amount, BudgetSpent } from "./spend-budget";
import type { AdmitRequest, AdmitResult, AttemptReport, Checkpoint } from "./protocol";

export class MemoryJournal implements JournalPort {
  readonly entries = new Map<string, EntrySnapshot & { expiresAt: number }>();

  get(key: string, now: number): EntrySnapshot | undefined {
    const e = this.entries.get(key);
    return e && e.expiresAt > now ? { ...e, chunks: [...e.chunks] } : undefined;
  }

  begin(key: string, kind: EntryKind, bodyHash: string, requestId: string, leaseId: string, limits: JournalLimits, now: number): void {
    const e = this.entries.get(key);
    if (e && e.expiresAt > now) Object.assign(e, { state: "running", requestId, leaseId });
    else
      this.entries.set(key, {
        key,
        kind,
        bodyHash,
        state: "running",
        requestId,
        leaseId,
        chunks: [],
        text: "",
        tokens: 0,
        overflow: false,
        expiresAt: now + limits.ttlMs,
      });
  }

  append(key: string, leaseId: string, p: Checkpoint): number | null {
    const e = this.entries.get(key);
    if (!e || e.leaseId !== leaseId) return null;
    if (p.from <= e.chunks.length) e.chunks.push(...p.chunks.slice(e.chunks.length - p.from));
    if (p.from <= e.chunks.length) Object.assign(e, { text: p.text, tokens: p.tokens });
    return e.chunks.length;
  }

  markIncomplete(key: string, leaseId: string): void {
    const e = this.entries.get(key);
    if (e?.leaseId === leaseId) e.overflow = true;
  }

  finish(key: string, leaseId: string, state: EntryState): void {
    const e = this.entries.get(key);
    if (e?.leaseId === leaseId) Object.assign(e, { state, leaseId: null });
  }
}

export class TestHost implements GateHost {
  readonly journal = new MemoryJournal();
  readonly stored = new Map<string, Lease>();
  readonly breakers = new Map<string, BreakerSnapshot>();
  /** Tickets with an open admit or poll call (the shell holds these). */
  readonly listening = new Set<string>();
  /** Every verdict handed to an open call, in order. */
  readonly delivered: Array<{ ticket: string; result: AdmitResult }> = [];
  readonly wakes: number[] = [];
  alarm: number | undefined;
  metricsChanges = 0;
  alertRequests = 0;
  urgentAlertRequests = 0;
  poolRequests = 0;
  private ids = 0;

  newId = () => `lease-${++this.ids}`;
  random = () => 0.5;
  saveLease = (lease: Lease) => void this.stored.set(lease.id, structuredClone(lease));
  dropLease = (id: string) => void this.stored.delete(id);
  setAlarm = (at: number | undefined) => void (this.alarm = at);
  saveBreaker = (id: string, snapshot: BreakerSnapshot) => void this.breakers.set(id, snapshot);
  dropBreaker = (id: string) => void this.breakers.delete(id);
  metricsChanged = () => void this.metricsChanges++;
  wakeAt = (at: number) => void this.wakes.push(at);
  alertsWanted = (now?: boolean) => void (now ? this.urgentAlertRequests++ : this.alertRequests++);
  poolsWanted = () => void this.poolRequests++;
  /** Every ledger entry recorded, in order, and each budget's spend as last saved. */
  readonly spendEntries: SpendEntry[] = [];
  readonly budgets = new Map<string, BudgetSpent>();
  recordSpend = (entries: SpendEntry[]) => void this.spendEntries.push(...entries);
  saveBudget = (id: string, spent: BudgetSpent) => void this.budgets.set(id, { ...spent });
  /** Ends of requests whose budgets shard 0 holds, in order. */
  readonly heldSettles: Array<{ holdId: string; actual: Amount | "charged" | "release"; keyId?: string }> = [];
  settleHeldBudget = (holdId: string, actual: Amount | "charged" | "release", keyId?: string) =>
    void this.heldSettles.push({ holdId, actual, keyId });

  deliver(ticket: string, result: AdmitResult): boolean {
    if (!this.listening.delete(ticket)) return false;
    this.delivered.push({ ticket, result });
    return true;
  }

  /** The verdict delivered to `ticket`'s open call, if any. */
  verdict(ticket: string): AdmitResult | undefined {
    return this.delivered.find((d) => d.ticket === ticket)?.result;
  }
}

/** A backend entry of a tenant config (its URL is never called: the core only routes). */
export const testBackend = (id: string, region: string, extra: Record<string, unknown> = {}) => ({
  id,
  region,
  url: `http://127.0.0.1:1/${id}`,
  model: "m",
  ...extra,
});

/** A tenant with backends a (us-east), b (eu-west), c (us-east), alias "chat" over them in that order. */
export function testConfig(overrides: Partial<TenantConfigInput> = {}): TenantConfig {
  return TenantConfigSchema.parse({
    backends: [testBackend("a", "us-east"), testBackend("b", "eu-west"), testBackend("c", "us-east")],
    models: { chat: { route: ["a", "b", "c"], order: "pinned" } },
    ...overrides,
  });
}

/** A core with `config` installed, and its host. */
export function testCore(config: TenantConfig = testConfig(), now = 0): { core: GateCore; host: TestHost } {
  const host = new TestHost();
  const core = new GateCore(host);
  core.loadConfig(config, 0, new Map(), now);
  return { core, host };
}

export function request(requestId: string, extra: Partial<AdmitRequest> = {}): AdmitRequest {
  return { tenant: "t", requestId, alias: "chat", priority: "normal", promptTokens: 10, ...extra };
}

/** Admits like the shell does: a "queued" answer leaves the call open (listening). */
export function admit(core: GateCore, host: TestHost, req: AdmitRequest, now: number): AdmitResult {
  const result = core.admit(req, now);
  if (result.kind === "queued") host.listening.add(result.ticket);
  return result;
}

/** The lease an admission granted; throws (failing the test) on any other answer. */
export function leaseOf(r: AdmitResult): Extract<AdmitResult, { kind: "lease" }> {
  if (r.kind !== "lease") throw new Error(`expected a lease, got ${JSON.stringify(r)}`);
  return r;
}

/** An attempt that failed before its first token (a 503). */
export const failure = (backendId: string, extra: Partial<AttemptReport> = {}): AttemptReport => ({
  backendId,
  outcome: "failure",
  durationMs: 5,
  chunks: 0,
  errorCode: "upstream_http_503",
  ...extra,
});

/** An attempt that answered (3 chunks). */
export const success = (backendId: string): AttemptReport => ({ backendId, outcome: "success", durationMs: 5, chunks: 3 });

/** A BackendView of `config`'s backends, each with a fresh breaker, and the loads given (per backend id). */
export function testBackendView(
  config: TenantConfig,
  inFlight: Record<string, number> = {},
  notBefore: Record<string, number> = {},
  capacity: Record<string, number> = {},
  waiting: Record<string, number> = {},
): { v: BackendView; breakers: Map<string, CircuitBreaker> } {
  const breakers = new Map(config.backends.map((b) => [b.id, new CircuitBreaker(config.breaker)]));
  const backends = new Map<string, BackendConfig>(config.backends.map((b) => [b.id, b]));
  const v: BackendView = {
    backend: (id) => backends.get(id),
    breaker: (id) => breakers.get(id),
    inFlight: (id) => (Object.hasOwn(inFlight, id) ? inFlight[id]! : 0),
    capacity: (id) => (Object.hasOwn(capacity, id) ? capacity[id]! : backends.get(id)!.maxConcurrency),
    notBefore: (id) => (Object.hasOwn(notBefore, id) ? notBefore[id] : undefined),
    waiting: (id) => (Object.hasOwn(waiting, id) ? waiting[id]! : 0),
  };
  return { v, breakers };
}
