import type { TenantGate } from "./gate/tenant-gate";
import type { ConfigLog } from "./admin/config-log";
import type { PoolGate } from "./pool/pool-gate";
import type { WebhookMessage } from "./observe/alerts/webhook-message";
import type { JobMessage } from "./jobs/messages";
import type { RunParams } from "./workflows/core/run-params";

/** Bindings of the sluice Worker (see wrangler.toml). */
export interface Env {
  TENANT_GATE: DurableObjectNamespace<TenantGate>;
  CONFIG_LOG: DurableObjectNamespace<ConfigLog>;
  /** One per shared pool: its backends' capacity for all tenants (pool/pool-gate.ts). */
  POOL_GATE: DurableObjectNamespace<PoolGate>;
  CONFIG: KVNamespace;
  DB: D1Database;
  /** Files: batch input and output (jobs/files.ts). */
  FILES: R2Bucket;
  /** Batch work: start, line and finalize messages (jobs/consumer.ts). */
  JOBS: Queue<JobMessage>;
  /** Workflow runs (workflows/runner.ts). */
  WORKFLOWS: Workflow<RunParams>;
  /** Webhook messages: the gates' alerts, and async generations' ends, for the webhook consumer (docs/operations.md, "Alerts"). */
  ALERTS: Queue<WebhookMessage>;
  /** The router's public URL (https://sluice.example.com): alerts link to its dashboard. */
  PUBLIC_URL?: string;
  /** Seconds before a batch line that failed is tried again; each next try waits twice as long. Default 2. */
  JOB_RETRY_DELAY_SECONDS?: string;
  /** Seconds before an alert's first redelivery after a failed webhook call; each next one doubles. Default 10. */
  ALERT_RETRY_DELAY_SECONDS?: string;
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
