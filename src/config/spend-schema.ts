// What tokens cost and how much may be spent (README, "Spend and budgets"): a backend's price and
// the budgets of a tenant or an API key. Part of the tenant config (schema.ts) and of a key's rules
// (key-rules.ts).
import * as z from "zod";
import { id } from "./id";

const usdPerMillion = z.number().min(0).max(1_000_000);

/**
 * A backend's price in US dollars per million tokens; or, for a self-hosted GPU, its hourly price
 * and the throughput it was measured at, turned into a price per token (core/pricing.ts).
 */
export const PriceSchema = z
  .object({
    inputPerMTok: usdPerMillion.optional(),
    outputPerMTok: usdPerMillion.optional(),
    /** Prompt tokens the backend served from its prefix cache (input price when absent). */
    cachedInputPerMTok: usdPerMillion.optional(),
    gpuHour: z
      .object({
        usd: z.number().positive().max(100_000),
        /** Output tokens a second the backend generates at full load, summed over its concurrent streams. */
        outputTokensPerSecond: z.number().positive().max(10_000_000),
        /** Prompt tokens a second it prefills at full load; prompts cost 0 when absent. */
        inputTokensPerSecond: z.number().positive().max(100_000_000).optional(),
      })
      .optional(),
  })
  .refine((p) => (p.gpuHour === undefined) !== (p.inputPerMTok === undefined && p.outputPerMTok === undefined), {
    message: "set inputPerMTok and outputPerMTok, or gpuHour, not both",
  });

/**
 * A spend budget (core/spend-budget.ts): at most `limit` US dollars or tokens a UTC day or month.
 * Past `softAt` of it an alert goes out and, with `softRoute`, requests go to that cheaper alias.
 */
export const BudgetSchema = z
  .object({
    name: id,
    period: z.enum(["day", "month"]),
    unit: z.enum(["usd", "tokens"]).default("usd"),
    limit: z.number().positive().max(1e12),
    /** The share of the limit that raises the soft alert (and routes to softRoute). */
    softAt: z.number().gt(0).max(1).optional(),
    softRoute: id.optional(),
  })
  .refine((b) => b.softRoute === undefined || b.softAt !== undefined, { message: "softRoute needs softAt", path: ["softRoute"] });

/** Budgets a tenant, or an API key, may hold at once. */
export const MAX_BUDGETS = 8;
export const BudgetsSchema = z
  .array(BudgetSchema)
  .max(MAX_BUDGETS)
  .refine((list) => new Set(list.map((b) => b.name)).size === list.length, { message: "budget names must be unique" });

export type BackendPrice = z.output<typeof PriceSchema>;
export type BudgetRule = z.output<typeof BudgetSchema>;
