import type { WorkflowDefinition } from "./definition";

/** What a run is started with: its definition travels with it, so it keeps the version it started with. */
export interface RunParams {
  tenant: string;
  runId: string;
  name: string;
  version: number;
  definition: WorkflowDefinition;
  input: unknown;
}
