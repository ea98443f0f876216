// GET /admin/dashboard: the operator's page (built from dashboard/ by `npm run build:dashboard`).
// The page itself holds no data and needs no token: it asks for one and calls the admin API with it.
import type { Context } from "hono";
import type { AppEnv } from "./context";
import { DASHBOARD_HTML } from "./dashboard-page.generated";

/** Its script and style are inline; it talks to this origin only and may not be framed. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

export function dashboardPage(c: Context<AppEnv>): Response {
  return c.html(DASHBOARD_HTML, 200, {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
  });
}
