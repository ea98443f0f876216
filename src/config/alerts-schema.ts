// A tenant's alerts (docs/operations.md, "Alerts"): webhook targets and the rules the gate evaluates. Each rule
// names a condition on the gate's figures; it fires once its condition has held `forSeconds`, and
// resolves when the condition clears. Checked beside the rest of the tenant config (schema.ts).
import * as z from "zod";
import { id } from "./id";

export const MAX_WEBHOOKS = 5;
export const MAX_ALERT_RULES = 20;

export const WebhookSchema = z.object({
  id,
  url: z
    .string()
    .max(2048)
    .url()
    .refine((u) => /^https?:\/\//.test(u), "must be an http(s) URL"),
});

const ruleFields = {
  id,
  /** How long the condition must hold before the rule fires (0: at the first evaluation that sees it). */
  forSeconds: z.number().int().min(0).max(86_400).default(0),
  /** Webhook ids to notify; all of the tenant's webhooks when absent. */
  webhooks: z.array(id).min(1).max(MAX_WEBHOOKS).optional(),
};

export const AlertRuleSchema = z.discriminatedUnion("kind", [
  /** A backend's circuit breaker is not closed (open, or half-open and not yet proven healthy). One alert per backend. */
  z.object({ ...ruleFields, kind: z.literal("breaker_open"), backends: z.array(id).min(1).max(64).optional() }),
  /** The queue is at least `depthShare` of limits.maxQueue deep, or its oldest request has waited `waitMs`. */
  z.object({
    ...ruleFields,
    kind: z.literal("queue_saturated"),
    depthShare: z.number().gt(0).max(1).optional(),
    waitMs: z.number().int().positive().max(600_000).optional(),
  }),
  /** The retry budget refused a retry in the last minute. */
  z.object({ ...ruleFields, kind: z.literal("retry_budget_exhausted") }),
  /** At least `perMinute` requests ended as dead letters in the last minute. */
  z.object({ ...ruleFields, kind: z.literal("dead_letters"), perMinute: z.number().int().positive().max(1_000_000) }),
  /**
   * A spend budget of the tenant or of one of its API keys (README, "Spend and budgets") is past its
   * soft threshold (`softAt`; spent, for a budget without one). One alert per budget; `budgets`
   * limits the rule to budgets of those names.
   */
  z.object({ ...ruleFields, kind: z.literal("budget"), budgets: z.array(id).min(1).max(16).optional() }),
  /** TTFT p99 over the last minute is at least `thresholdMs`, over at least `minSamples` first tokens. */
  z.object({
    ...ruleFields,
    kind: z.literal("ttft_p99"),
    thresholdMs: z.number().int().positive().max(600_000),
    minSamples: z.number().int().positive().max(100_000).default(10),
  }),
]);

export const AlertsSchema = z.object({
  webhooks: z.array(WebhookSchema).max(MAX_WEBHOOKS).default([]),
  rules: z.array(AlertRuleSchema).max(MAX_ALERT_RULES).default([]),
  /** The least time between two "firing" messages of one alert: a flapping condition does not page every minute. */
  cooldownSeconds: z.number().int().min(0).max(86_400).default(300),
  /** The webhook told when an async generation ends (docs/background-work.md, "Async generations"); a request's Sluice-Webhook header overrides it. */
  generationWebhook: id.optional(),
});

export type AlertsConfig = z.output<typeof AlertsSchema>;
export type AlertRule = AlertsConfig["rules"][number];
export type AlertKind = AlertRule["kind"];

interface Issue {
  path: (string | number)[];
  message: string;
}

/** What the config's alerts get wrong beyond their shape: duplicate ids, unknown webhooks (backends: backend-refs.ts). */
export function alertsIssues(alerts: AlertsConfig): Issue[] {
  const issues: Issue[] = [];
  const webhookIds = new Set<string>();
  alerts.webhooks.forEach((w, i) => {
    if (webhookIds.has(w.id)) issues.push({ path: ["alerts", "webhooks", i, "id"], message: `duplicate webhook id "${w.id}"` });
    webhookIds.add(w.id);
  });
  if (alerts.generationWebhook !== undefined && !webhookIds.has(alerts.generationWebhook))
    issues.push({ path: ["alerts", "generationWebhook"], message: `unknown webhook "${alerts.generationWebhook}"` });
  if (alerts.rules.length > 0 && webhookIds.size === 0)
    issues.push({ path: ["alerts", "webhooks"], message: "rules need at least one webhook to notify" });
  const ruleIds = new Set<string>();
  alerts.rules.forEach((rule, i) => {
    if (ruleIds.has(rule.id)) issues.push({ path: ["alerts", "rules", i, "id"], message: `duplicate rule id "${rule.id}"` });
    ruleIds.add(rule.id);
    rule.webhooks?.forEach((w, j) => {
      if (!webhookIds.has(w)) issues.push({ path: ["alerts", "rules", i, "webhooks", j], message: `unknown webhook "${w}"` });
    });
    if (rule.kind === "queue_saturated" && rule.depthShare === undefined && rule.waitMs === undefined)
      issues.push({ path: ["alerts", "rules", i], message: "set depthShare, waitMs or both" });
  });
  return issues;
}
