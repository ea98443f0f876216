// The names a config gives things (backends, model aliases, pools, webhooks, rules, budgets).
import * as z from "zod";

export const id = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/, "must be 1-64 characters of letters, digits, '.', '_' or '-'");
