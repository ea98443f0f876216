// Tenant configuration, validated with zod (docs/admin-api.md, "Tenant config"). Field names are fixed;
// every field beyond `models` has a default so a minimal config is valid. Which backend ids a config
// may name depends on the fleet too: backend-refs.ts checks those against it.
import * as z from "zod";
import { id } from "./id";
import { AlertsSchema, alertsIssues } from "./alerts-schema";
import { BudgetsSchema, PriceSchema } from "./spend-schema";

export const BackendSchema = z.object({
  id,
  region: z.string().min(1).max(64),
  url: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), "must be an http(s) URL")
    .transform((u) => u.replace(/\/+$/, "")),
  model: z.string().min(1).max(256),
  // Sent as an Authorization header: visible ASCII only (a CR or LF would break every request).
  apiKey: z
    .string()
    .min(1)
    .max(4096)
    .regex(/^[\x21-\x7e]+$/, "must be visible ASCII characters (no spaces, CR, LF or other control characters)")
    .optional(),
  maxConcurrency: z.number().int().positive().max(100_000).default(32),
  /** Accepts a continuation request (vLLM's continue_final_message) to resume a broken stream. */
  resume: z.boolean().default(false),
  /**
   * Learn how many attempts the backend takes at once from its time to first token, up to
   * maxConcurrency (gate/core/adaptive-limit.ts); its slow timeouts then leave its breaker and the
   * retry budget alone.
   */
  adaptiveConcurrency: z.boolean().default(false),
  /** Context window in tokens; prompts estimated longer than this skip the backend. */
  contextTokens: z.number().int().positive().optional(),
  /** What the backend serves; one that declares nothing is tried for both. */
  serves: z
    .array(z.enum(["chat", "embeddings"]))
    .min(1)
    .max(2)
    .optional(),
  /** Coordinates, for regions not in sluice's built-in table. */
  lat: z.number().min(-90).max(90).optional(),
  lon: z.number().min(-180).max(180).optional(),
  /**
   * The shared pool of a fleet backend (config/fleet.ts), whose capacity the pool owns for all
   * tenants. Set by the fleet only: a tenant config's own backends have none.
   */
  pool: id.optional(),
  /** What the backend's tokens cost (core/pricing.ts); a backend without a price costs 0 and reports say so. */
  price: PriceSchema.optional(),
});

/** Model aliases per tenant, and how many fallback hops a request may take from the alias it named. */
export const MAX_ALIASES = 256;
export const MAX_FALLBACK_DEPTH = 8;

export const ModelRouteSchema = z.object({
  route: z.array(id).min(1).max(32),
  fallbacks: z.array(id).max(8).default([]),
  /** "nearest": order backends by distance to the request's colo; "pinned": as listed. */
  order: z.enum(["nearest", "pinned"]).default("nearest"),
  /**
   * Among equally near backends, a session's turns go to the one that served it before (its prefix
   * is in that server's cache: gate/core/affinity.ts); false: to the one with fewest in flight.
   */
  affinity: z.boolean().default(true),
  /** Requests asking for more than `maxTokens` output tokens go to alias `to` instead. */
  tokenBudget: z.object({ maxTokens: z.number().int().positive(), to: id }).optional(),
});

/** A tenant's gates: limits.shards is at most this. */
export const MAX_SHARDS = 32;
/** The longest a request may run (timeouts.totalMs at most). */
export const MAX_TOTAL_MS = 3_600_000;

export const LimitsSchema = z.object({
  maxConcurrency: z.number().int().positive().max(100_000).default(64),
  maxQueue: z.number().int().nonnegative().max(100_000).default(256),
  maxQueueWaitMs: z.number().int().positive().max(600_000).default(10_000),
  /** Largest accepted request body, in bytes. */
  maxBodyBytes: z.number().int().positive().max(10_000_000).default(1_000_000),
  /** Longest a client may take to send its request body (a body that never ends is cut off with 408). */
  bodyReadTimeoutMs: z.number().int().min(100).max(300_000).default(30_000),
  /** After a queue-full 429, a Worker answers like requests itself for this long (0: always ask the gate). */
  shedHintMs: z.number().int().nonnegative().max(10_000).default(25),
  /**
   * Gate objects the tenant's load is spread over, each with its share of the limits (one object
   * serves on the order of 500-1,000 calls a second).
   */
  shards: z.number().int().min(1).max(MAX_SHARDS).default(1),
  /** Requests admitted per minute: bursts up to this many, then this pace (none by default). */
  requestsPerMinute: z.number().int().positive().max(100_000_000).optional(),
  /** Prompt plus completion tokens per minute, estimated at admission and settled at the end (none by default). */
  tokensPerMinute: z.number().int().positive().max(10_000_000_000).optional(),
  /** Background work (batch lines) in flight at most, within maxConcurrency (default: half of it). */
  background: z.number().int().nonnegative().max(100_000).optional(),
});

export const RetrySchema = z.object({
  maxAttempts: z.number().int().min(1).max(10).default(3),
  baseDelayMs: z.number().int().nonnegative().max(60_000).default(50),
  maxDelayMs: z.number().int().nonnegative().max(120_000).default(5_000),
  budgetRatio: z.number().min(0).max(10).default(0.2),
  /** Retries always allowed per budget window, so a quiet tenant can still retry. */
  budgetMinRetries: z.number().int().nonnegative().max(10_000).default(10),
  budgetWindowMs: z.number().int().positive().max(3_600_000).default(10_000),
});

export const BreakerSchema = z.object({
  failureRate: z.number().gt(0).max(1).default(0.5),
  minRequests: z.number().int().positive().max(100_000).default(5),
  windowMs: z.number().int().positive().max(3_600_000).default(30_000),
  cooldownMs: z.number().int().positive().max(3_600_000).default(5_000),
  maxCooldownMs: z.number().int().positive().max(3_600_000).default(60_000),
  consecutiveFailures: z.number().int().positive().max(1_000).default(5),
  halfOpenProbes: z.number().int().positive().max(100).default(1),
});

/**
 * Hedged first tokens (gate/core/hedging.ts): an attempt whose first token is later than most of its
 * model's lately gets a twin on another backend of the model; the first to produce a token goes on.
 * Off by default: a hedge spends GPU work on an answer that may be thrown away.
 */
export const HedgingSchema = z.object({
  enabled: z.boolean().default(false),
  /** Hedges at most this share of requests over the retry budget's window (at least one per window). */
  budgetRatio: z.number().min(0).max(1).default(0.05),
  /** First tokens of the model seen in the last minute before its p95 is trusted as the hedge's delay. */
  minSamples: z.number().int().min(1).max(10_000).default(20),
  /** Never hedge sooner than this after the attempt started. */
  minDelayMs: z.number().int().nonnegative().max(600_000).default(50),
});

export const TimeoutsSchema = z.object({
  connectMs: z.number().int().positive().max(600_000).default(3_000),
  firstTokenMs: z.number().int().positive().max(600_000).default(15_000),
  idleMs: z.number().int().positive().max(600_000).default(10_000),
  totalMs: z.number().int().positive().max(MAX_TOTAL_MS).default(600_000),
  /** A streaming client that takes nothing for this long counts as gone (it would hold a slot). */
  clientStallMs: z.number().int().positive().max(600_000).default(60_000),
});

export const IdempotencySchema = z.object({
  /** How long a key and its answer are kept. */
  ttlMs: z
    .number()
    .int()
    .positive()
    .max(7 * 86_400_000)
    .default(86_400_000),
  maxEntries: z.number().int().positive().max(1_000_000).default(10_000),
  maxBytes: z
    .number()
    .int()
    .positive()
    .max(1_000_000_000)
    .default(64 * 1024 * 1024),
  /** Larger answers are not stored for replay (their keys still dedupe). */
  maxEntryBytes: z
    .number()
    .int()
    .positive()
    .max(64 * 1024 * 1024)
    .default(4 * 1024 * 1024),
});

export const DedupSchema = z.object({
  /** Requests with temperature 0 share in-flight generations and stored answers. */
  semantic: z.boolean().default(false),
  /** When every backend fails, a temperature-0 request is answered from a stored answer. */
  staleIfError: z.boolean().default(false),
});

export const WorkflowsSchema = z.object({
  /** Hosts a workflow's effect steps may call (exact host names). */
  effectHosts: z.array(z.string().min(1).max(253)).max(20).default([]),
  /** Runs queued or running at once; more are refused with 429. */
  maxConcurrentRuns: z.number().int().min(1).max(1_000).default(20),
});

/**
 * Operator-only: where requests sluice makes on a tenant's behalf (alert and generation webhooks,
 * workflow effects) may go. A tenant admin sets those URLs; loopback and private addresses need the
 * operator's allowance here, besides the deployment's ALLOW_LOCAL_BACKENDS.
 */
export const OutboundSchema = z.object({
  allowPrivateHosts: z.boolean().default(false),
});

/** Operator-only: a tenant's share of a shared pool (README, "Shared pools"). */
export const PoolShareSchema = z
  .object({
    /** Its share of the pool while the pool is saturated, against the other waiting tenants' weights. */
    weight: z.number().int().min(1).max(1_000).default(1),
    /** Slots it gets before any tenant gets more than its share, when it wants them. */
    min: z.number().int().nonnegative().max(100_000).default(0),
    /** Slots it never holds more of, however idle the pool. */
    max: z.number().int().positive().max(100_000).optional(),
  })
  .refine((s) => s.max === undefined || s.max >= s.min, { message: "max must be at least min", path: ["max"] });

export const DeadLettersSchema = z.object({
  /** Keep each dead letter's request body (up to 256 KiB), so it can be run again; false for privacy (redrive is then refused). */
  keepRequests: z.boolean().default(true),
});

export const TenantConfigSchema = z
  .object({
    /** The tenant's own backends; its routes may also name fleet backends (config/fleet.ts), or only those. */
    backends: z.array(BackendSchema).max(64).default([]),
    models: z.record(id, ModelRouteSchema),
    limits: LimitsSchema.default(LimitsSchema.parse({})),
    retry: RetrySchema.default(RetrySchema.parse({})),
    breaker: BreakerSchema.default(BreakerSchema.parse({})),
    timeouts: TimeoutsSchema.default(TimeoutsSchema.parse({})),
    hedging: HedgingSchema.default(HedgingSchema.parse({})),
    idempotency: IdempotencySchema.default(IdempotencySchema.parse({})),
    dedup: DedupSchema.default(DedupSchema.parse({})),
    alerts: AlertsSchema.default(AlertsSchema.parse({})),
    deadLetters: DeadLettersSchema.default(DeadLettersSchema.parse({})),
    workflows: WorkflowsSchema.default(WorkflowsSchema.parse({})),
    outbound: OutboundSchema.default(OutboundSchema.parse({})),
    /** The tenant's spend budgets (README, "Spend and budgets"); each API key may have its own too. */
    budgets: BudgetsSchema.default([]),
    /** Operator-only: the tenant's weight, minimum and maximum on each shared pool it uses (weight 1 when absent). */
    pools: z.record(id, PoolShareSchema).default({}),
  })
  .superRefine((cfg, ctx) => {
    const backendIds = new Set<string>();
    cfg.backends.forEach((b, i) => {
      if (backendIds.has(b.id)) ctx.addIssue({ code: "custom", path: ["backends", i, "id"], message: `duplicate backend id "${b.id}"` });
      if (b.pool !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["backends", i, "pool"],
          message: "only a fleet backend has a pool: name one in a route instead",
        });
      backendIds.add(b.id);
    });
    const aliasCount = Object.keys(cfg.models).length;
    if (aliasCount === 0) ctx.addIssue({ code: "custom", path: ["models"], message: "define at least one model alias" });
    if (aliasCount > MAX_ALIASES)
      ctx.addIssue({ code: "custom", path: ["models"], message: `at most ${MAX_ALIASES} model aliases (got ${aliasCount})` });
    else
      for (const alias of Object.keys(cfg.models)) {
        if (fallbackDepth(cfg.models, alias) > MAX_FALLBACK_DEPTH)
          ctx.addIssue({
            code: "custom",
            path: ["models", alias, "fallbacks"],
            message: `fallbacks reach more than ${MAX_FALLBACK_DEPTH} hops from this alias`,
          });
      }
    const cycle = fallbackCycle(cfg.models);
    if (cycle) ctx.addIssue({ code: "custom", path: ["models", cycle[0]!, "fallbacks"], message: `fallback cycle: ${cycle.join(" -> ")}` });
    for (const [alias, m] of Object.entries(cfg.models)) {
      m.fallbacks.forEach((f, i) => {
        if (!Object.hasOwn(cfg.models, f))
          ctx.addIssue({ code: "custom", path: ["models", alias, "fallbacks", i], message: `unknown model alias "${f}"` });
        if (f === alias)
          ctx.addIssue({ code: "custom", path: ["models", alias, "fallbacks", i], message: "a model cannot fall back to itself" });
      });
      if (m.tokenBudget && !Object.hasOwn(cfg.models, m.tokenBudget.to))
        ctx.addIssue({
          code: "custom",
          path: ["models", alias, "tokenBudget", "to"],
          message: `unknown model alias "${m.tokenBudget.to}"`,
        });
    }
    cfg.budgets.forEach((b, i) => {
      if (b.softRoute !== undefined && !Object.hasOwn(cfg.models, b.softRoute))
        ctx.addIssue({ code: "custom", path: ["budgets", i, "softRoute"], message: `unknown model alias "${b.softRoute}"` });
    });
    const shards = cfg.limits.shards;
    if (shards > 1) {
      // Every shard needs a slot of each backend and of the tenant, or it could never serve.
      if (cfg.limits.maxConcurrency < shards)
        ctx.addIssue({
          code: "custom",
          path: ["limits", "maxConcurrency"],
          message: `must be at least limits.shards (${shards}): each shard gets its share`,
        });
      for (const limit of ["requestsPerMinute", "tokensPerMinute"] as const) {
        const value = cfg.limits[limit];
        if (value !== undefined && value < shards)
          ctx.addIssue({
            code: "custom",
            path: ["limits", limit],
            message: `must be at least limits.shards (${shards}): each shard gets its share`,
          });
      }
      cfg.backends.forEach((b, i) => {
        if (b.maxConcurrency < shards)
          ctx.addIssue({
            code: "custom",
            path: ["backends", i, "maxConcurrency"],
            message: `must be at least limits.shards (${shards}): each shard gets its share`,
          });
      });
    }
    for (const issue of alertsIssues(cfg.alerts)) ctx.addIssue({ code: "custom", ...issue });
    if (cfg.retry.maxDelayMs < cfg.retry.baseDelayMs)
      ctx.addIssue({ code: "custom", path: ["retry", "maxDelayMs"], message: "must be at least baseDelayMs" });
  });

export type TenantConfig = z.output<typeof TenantConfigSchema>;

/** Hops of the fallback chain from `alias` (breadth first, each alias once), stopping past the limit. */
function fallbackDepth(models: Record<string, { fallbacks: string[] }>, alias: string): number {
  const seen = new Set([alias]);
  let level = [alias];
  let depth = 0;
  while (depth <= MAX_FALLBACK_DEPTH) {
    const next = level.flatMap((a) => (Object.hasOwn(models, a) ? models[a]!.fallbacks : [])).filter((f) => !seen.has(f));
    if (next.length === 0) return depth;
    for (const f of next) seen.add(f);
    level = next;
    depth++;
  }
  return depth;
}

/**
 * A cycle of fallbacks (["a", "b", "a"]: a falls back to b, which falls back to a), or null. A
 * request would never stop falling back on it; the first one found is reported.
 */
function fallbackCycle(models: Record<string, { fallbacks: string[] }>): string[] | null {
  const done = new Set<string>();
  const visit = (alias: string, path: string[]): string[] | null => {
    const at = path.indexOf(alias);
    if (at >= 0) return [...path.slice(at), alias];
    if (done.has(alias) || !Object.hasOwn(models, alias)) return null;
    for (const next of models[alias]!.fallbacks) {
      if (next === alias) continue; // reported on its own: "a model cannot fall back to itself"
      const cycle = visit(next, [...path, alias]);
      if (cycle) return cycle;
    }
    done.add(alias);
    return null;
  };
  for (const alias of Object.keys(models)) {
    const cycle = visit(alias, []);
    if (cycle) return cycle;
  }
  return null;
}

/** The route of a model alias, by a name from a request: own aliases only, never the prototype's ("constructor"). */
export function modelRoute(config: TenantConfig, alias: string): TenantConfig["models"][string] | undefined {
  return Object.hasOwn(config.models, alias) ? config.models[alias] : undefined;
}
export type TenantConfigInput = z.input<typeof TenantConfigSchema>;
export type BackendConfig = TenantConfig["backends"][number];
export type ModelRoute = TenantConfig["models"][string];
export type HedgingConfig = TenantConfig["hedging"];
export type { BackendPrice, BudgetRule } from "./spend-schema";

/** Turns zod issues into one readable sentence: "backends.0.url: must be an http(s) URL; ...". */
export function describeIssues(error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> }, limit = 5): string {
  const parts = error.issues.slice(0, limit).map((i) => (i.path.length ? `${i.path.map(String).join(".")}: ${i.message}` : i.message));
  if (error.issues.length > limit) parts.push(`and ${error.issues.length - limit} more`);
  return parts.join("; ");
}
