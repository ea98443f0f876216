// A tenant's workflows at a glance (GET /admin/tenants/{tenant}/workflows, and the tenant's
// Prometheus metrics), over the runs kept (RUN_TTL_MS): runs by status, failed attempts by step and
// backend, skipped optional steps, effect calls. Read from D1, so they are gauges over the retained
// window, not counters since the start.
import type { MetricFamily } from "../observe/prometheus";
import type { RunStatus } from "./core/run-state";
import type { WorkflowSummary } from "./core/summary";

export type { WorkflowSummary };

/** At most this many (step, backend) rows: a tenant has at most 100 workflows of 50 steps. */
const MAX_ROWS = 5_000;

export async function workflowSummary(db: D1Database, tenant: string): Promise<WorkflowSummary> {
  const [runs, events] = await Promise.all([
    db
      .prepare(`SELECT status, COUNT(*) AS n FROM workflow_runs WHERE tenant = ? GROUP BY status`)
      .bind(tenant)
      .all<{ status: RunStatus; n: number }>(),
    db
      .prepare(
        `SELECT json_extract(e.event, '$.type') AS type, json_extract(e.event, '$.step') AS step,
                json_extract(e.event, '$.kind') AS kind, COALESCE(json_extract(e.event, '$.backend'), '') AS backend, COUNT(*) AS n
           FROM workflow_events e
          WHERE e.tenant = ? AND json_extract(e.event, '$.type') IN ('step.attempt_failed', 'step.failed', 'step.skipped', 'step.succeeded')
          GROUP BY 1, 2, 3, 4 LIMIT ?`,
      )
      .bind(tenant, MAX_ROWS)
      .all<{ type: string; step: string; kind: string; backend: string; n: number }>(),
  ]);
  const summary: WorkflowSummary = { runs: {}, attemptFailures: [], stepFailures: [], effectCalls: 0 };
  for (const r of runs.results) summary.runs[r.status] = r.n;
  const ends = new Map<string, { step: string; failed: number; skipped: number }>();
  for (const e of events.results) {
    if (e.kind === "effect" && (e.type === "step.attempt_failed" || e.type === "step.succeeded")) summary.effectCalls += e.n;
    if (e.type === "step.attempt_failed") summary.attemptFailures.push({ step: e.step, backend: e.backend, failures: e.n });
    if (e.type === "step.failed" || e.type === "step.skipped") {
      const end = ends.get(e.step) ?? { step: e.step, failed: 0, skipped: 0 };
      if (e.type === "step.failed") end.failed += e.n;
      else end.skipped += e.n;
      ends.set(e.step, end);
    }
  }
  summary.stepFailures = [...ends.values()];
  return summary;
}

/** The summary as Prometheus gauges, each sample labelled with the tenant. */
export function workflowFamilies(tenant: string, summary: WorkflowSummary): MetricFamily[] {
  return [
    {
      name: "sluice_workflow_runs",
      type: "gauge",
      help: "Workflow runs kept (7 days), by status.",
      samples: Object.entries(summary.runs).map(([status, n]) => [{ tenant, status }, n]),
    },
    {
      name: "sluice_workflow_attempt_failures",
      type: "gauge",
      help: "Failed workflow step attempts in the runs kept, by step and backend.",
      samples: summary.attemptFailures.map((f) => [{ tenant, step: f.step, backend: f.backend }, f.failures]),
    },
    {
      name: "sluice_workflow_steps_failed",
      type: "gauge",
      help: "Workflow steps that failed for good in the runs kept, by step.",
      samples: summary.stepFailures.map((f) => [{ tenant, step: f.step }, f.failed]),
    },
    {
      name: "sluice_workflow_steps_skipped",
      type: "gauge",
      help: "Optional workflow steps skipped in the runs kept, by step.",
      samples: summary.stepFailures.map((f) => [{ tenant, step: f.step }, f.skipped]),
    },
    {
      name: "sluice_workflow_effect_calls",
      type: "gauge",
      help: "Calls made by workflow effect steps in the runs kept.",
      samples: [[{ tenant }, summary.effectCalls]],
    },
  ];
}
