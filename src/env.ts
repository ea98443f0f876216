import type { TenantGate } from "./gate/tenant-gate";
import type { ConfigLog } from "./admin/config-log";

/** Bindings of the sluice Worker (see wrangler.toml). */
export interface Env {
  TENANT_GATE: DurableObjectNamespace<TenantGate>;
  CONFIG_LOG: DurableObjectNamespace<ConfigLog>;
  CONFIG: KVNamespace;
  DB: D1Database;
  /** Secret: `wrangler secret put ADMIN_TOKEN`. Admin routes answer 401 while it is unset. */
  ADMIN_TOKEN?: string;
  /** Optional: one data point per request (observe/analytics.ts); unbound, nothing is written. */
  ANALYTICS?: AnalyticsEngineDataset;
  CONFIG_CACHE_TTL_SECONDS?: string;
  /** "true": backends may be on loopback, 0.0.0.0 or private addresses (local development; see config/backend-url.ts). */
  ALLOW_LOCAL_BACKENDS?: string;
  /** How long (ms of a stream's pace) a read may wait to take several events in a busy isolate; 0: one event per read. Default 50. */
  READ_BATCH_MAX_HOLD_MS?: string;
}
