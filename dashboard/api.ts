// The dashboard's calls to sluice's admin API, with the admin token from the page (never in a URL).
import type { GateStats } from "../src/observe/prometheus";
import type { WorkflowSummary } from "../src/workflows/core/summary";
import type { PoolStats } from "../src/pool/core/pool-stats";
import type { SpendFigures } from "../src/observe/spend-report";

export type { PoolStats, WorkflowSummary };

export type Stats = GateStats;

export interface DeadLetter {
  id: number;
  requestId: string;
  traceId: string | null;
  model: string;
  status: number;
  code: string;
  message: string;
  partial: boolean;
  createdAt: number;
  attempts: Array<{
    attempt: number;
    backendId: string;
    continuation: boolean;
    outcome: string;
    errorCode?: string;
    httpStatus?: number;
    durationMs: number;
    chunks: number;
  }>;
}

/** What GET /admin/tenants/{t}/spend?group_by=day answers (src/api/admin-spend.ts). */
export interface SpendAnswer {
  from: string;
  to: string;
  total: SpendFigures;
  data: Array<SpendFigures & { day: string }>;
  budgets: Array<{
    scope: string;
    key_name?: string | null;
    name: string;
    period: string;
    unit: string;
    limit: number;
    spent: number;
    held: number;
  }>;
  unpriced_backends: string[];
}

export class Unauthorized extends Error {}

export class AdminApi {
  constructor(private readonly token: string) {}

  private async get<T>(path: string): Promise<T> {
    const res = await fetch(path, { headers: { authorization: `Bearer ${this.token}` } });
    if (res.status === 401) throw new Unauthorized();
    if (!res.ok) throw new Error(`${path}: ${res.status}`);
    return (await res.json()) as T;
  }

  async tenants(): Promise<string[]> {
    const page = await this.get<{ data: Array<{ tenant: string }> }>("/admin/tenants?limit=100");
    return page.data.map((t) => t.tenant);
  }

  stats(tenant: string): Promise<Stats> {
    return this.get<Stats>(`/admin/tenants/${encodeURIComponent(tenant)}/stats`);
  }

  workflows(tenant: string): Promise<WorkflowSummary> {
    return this.get<WorkflowSummary>(`/admin/tenants/${encodeURIComponent(tenant)}/workflows`);
  }

  /** Every shared pool's stats (the first 100 pools); the operator's only: a tenant admin key gets none. */
  async pools(): Promise<PoolStats[]> {
    const page = await this.get<{ data: Array<{ id: string }> }>("/admin/pools?limit=100");
    return Promise.all(
      page.data.map(async (p) => (await this.get<{ stats: PoolStats }>(`/admin/pools/${encodeURIComponent(p.id)}`)).stats),
    );
  }

  /** The last `days` days' spend, per day. */
  spend(tenant: string, days: number): Promise<SpendAnswer> {
    const day = (ago: number) => new Date(Date.now() - ago * 86_400_000).toISOString().slice(0, 10);
    return this.get<SpendAnswer>(`/admin/tenants/${encodeURIComponent(tenant)}/spend?group_by=day&from=${day(days - 1)}&to=${day(0)}`);
  }

  async deadLetters(tenant: string): Promise<DeadLetter[]> {
    return (await this.get<{ data: DeadLetter[] }>(`/admin/tenants/${encodeURIComponent(tenant)}/dead-letters?limit=10`)).data;
  }
}
