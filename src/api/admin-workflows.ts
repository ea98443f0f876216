// A tenant's workflow definitions (docs/workflows.md, "Workflows"): PUT stores a new version (runs already
// started keep theirs), GET reads the newest, DELETE stops new runs. A definition is checked as a
// DAG (definition.ts) and against the tenant's config: model aliases it has, effect hosts it allows.
import { Hono } from "hono";
import type { AppEnv } from "./context";
import { errorResponse } from "../stream/errors";
import { readTenantConfig } from "../config/store";
import { boundedBody, jsonBody, validJson } from "./validation";
import { tenantNotFound } from "./admin-scope";
import { configIssues, MAX_DEFINITION_BYTES, WorkflowDefinitionSchema } from "../workflows/core/definition";
import { MAX_WORKFLOWS, WorkflowStore } from "../workflows/store";
import { workflowSummary } from "../workflows/summary";

/** A workflow's name: as an id, and never "runs" (GET /v1/workflows/runs/{id} reads a run). */
export const validWorkflowName = (name: string) => /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/.test(name) && name !== "runs";

const invalidName = (name: string) =>
  errorResponse(
    400,
    "invalid_workflow_name",
    `"${name.slice(0, 80)}" is not a workflow name: 1-64 letters, digits, '.', '_' or '-', and not "runs".`,
  );
export const workflowNotFound = (name: string) => errorResponse(404, "workflow_not_found", `No workflow "${name}".`);

const definitionBody = boundedBody(() => ({ maxBytes: MAX_DEFINITION_BYTES, readTimeoutMs: 30_000 }));

export const adminWorkflowsRoute = new Hono<AppEnv>()
  .get("/", async (c) => {
    const tenant = c.req.param("tenant")!;
    if (!(await readTenantConfig(c.env, tenant))) return tenantNotFound(tenant);
    return c.json(await workflowSummary(c.env.DB, tenant));
  })
  .put("/:name", jsonBody, definitionBody, validJson(WorkflowDefinitionSchema), async (c) => {
    const tenant = c.req.param("tenant")!;
    const name = c.req.param("name");
    if (!validWorkflowName(name)) return invalidName(name);
    const config = await readTenantConfig(c.env, tenant);
    if (!config) return tenantNotFound(tenant);
    const definition = c.req.valid("json");
    const issues = configIssues(definition, new Set(Object.keys(config.models)), config.workflows.effectHosts);
    if (issues.length > 0)
      return errorResponse(
        400,
        "invalid_workflow",
        `Invalid workflow: ${issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      );
    const stored = await new WorkflowStore(c.env.DB, tenant).putDefinition(name, definition, Date.now());
    if (!stored) return errorResponse(409, "too_many_workflows", `A tenant has at most ${MAX_WORKFLOWS} workflows; delete one first.`);
    return c.json(stored);
  })
  .get("/:name", async (c) => {
    const name = c.req.param("name");
    if (!validWorkflowName(name)) return invalidName(name);
    const stored = await new WorkflowStore(c.env.DB, c.req.param("tenant")!).definition(name);
    return stored ? c.json(stored) : workflowNotFound(name);
  })
  .delete("/:name", async (c) => {
    const name = c.req.param("name");
    if (!validWorkflowName(name)) return invalidName(name);
    const deleted = await new WorkflowStore(c.env.DB, c.req.param("tenant")!).deleteDefinition(name, Date.now());
    return deleted ? c.json({ deleted: name }) : workflowNotFound(name);
  });
