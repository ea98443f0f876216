import type { Env } from "../env";
import type { TenantConfig } from "../config/schema";
import type { RequestLog } from "../observe/request-log";
import type { TraceContext } from "../trace-context";
import type { KeyRef } from "../gate/core/protocol";

export type AdminPrincipal = { kind: "operator" } | { kind: "tenant"; tenant: string; keyId: string };

/** Hono's typing of sluice's app: bindings, and what middleware puts on the context. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    /** The request's log line (observe/request-log.ts). */
    requestLog: RequestLog;
    /** The W3C trace the request belongs to (trace-context.ts). */
    trace: TraceContext;
    tenant: string;
    config: TenantConfig;
    /** Who called an admin route: the operator (ADMIN_TOKEN) or a tenant admin key (api/auth.ts). */
    admin: AdminPrincipal;
    /** The API key a /v1 request came with: what the gate is told of it, and its name (for the request log). */
    apiKey: { ref: KeyRef; name?: string };
    /** The tenant's gate for a request without a journal key, once chosen (shards.ts). */
    shard?: number;
  };
}
