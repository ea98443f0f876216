import { Hono } from "hono";
import type { AppEnv } from "./context";
import { tenantAuth } from "./auth";

/** GET /v1/models: the tenant's model aliases, in OpenAI's list shape. */
export const modelsRoute = new Hono<AppEnv>().get("/", tenantAuth, (c) => {
  const tenant = c.get("tenant");
  const data = Object.keys(c.get("config").models).map((id) => ({ id, object: "model", created: 0, owned_by: tenant }));
  return c.json({ object: "list", data });
});
