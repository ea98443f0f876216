// An API key's own rules (README, "Spend and budgets"): a name that appears in logs and spend,
// metadata for its owner's bookkeeping, an expiry, and limits of its own within the tenant's.
import * as z from "zod";
import { BudgetsSchema } from "./spend-schema";

export const MAX_KEY_METADATA = 16;

export const KeyRulesSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[\x20-\x7e]+$/, "must be printable ASCII")
      .optional(),
    /** Free-form labels (owner, team): at most 16, keys up to 64 and values up to 256 characters. */
    metadata: z
      .record(z.string().min(1).max(64), z.string().max(256))
      .refine((m) => Object.keys(m).length <= MAX_KEY_METADATA, `at most ${MAX_KEY_METADATA} entries`)
      .optional(),
    /** ISO 8601: the key stops working then (401 expired_api_key). */
    expiresAt: z.iso.datetime({ offset: true }).optional(),
    limits: z
      .object({
        requestsPerMinute: z.number().int().positive().max(100_000_000).optional(),
        /** Prompt plus max_tokens per minute, estimated at admission and settled at the end. */
        tokensPerMinute: z.number().int().positive().max(10_000_000_000).optional(),
        /** Its requests queued or running at once. */
        maxConcurrency: z.number().int().positive().max(100_000).optional(),
        budgets: BudgetsSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type KeyRules = z.output<typeof KeyRulesSchema>;

/** Whether the key's expiry has passed at `now`. */
export function expired(rules: KeyRules, now: number): boolean {
  return rules.expiresAt !== undefined && Date.parse(rules.expiresAt) <= now;
}
