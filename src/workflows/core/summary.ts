// The shape of a tenant's workflow summary (workflows/summary.ts reads it from D1; the dashboard shows it).
import type { RunStatus } from "./run-state";

export interface WorkflowSummary {
  runs: Partial<Record<RunStatus, number>>;
  /** Failed attempts (each a call that failed or gave a bad answer), by step and backend ("" when none was reached). */
  attemptFailures: Array<{ step: string; backend: string; failures: number }>;
  /** Steps that failed for good (required) or were skipped (optional), by step. */
  stepFailures: Array<{ step: string; failed: number; skipped: number }>;
  /** Calls effect steps made: each attempt is one. */
  effectCalls: number;
}
