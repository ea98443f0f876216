// Where sluice may send a request it makes on its own (an alert webhook, a workflow's effect): the
// rules of a backend's URL (config/backend-url.ts), with the router's public host as its own.
import type { Env } from "../env";
import type { BackendUrlPolicy } from "../config/backend-url";

export function outboundUrlPolicy(env: Env): BackendUrlPolicy {
  return {
    allowLocal: env.ALLOW_LOCAL_BACKENDS === "true",
    routerHost: env.PUBLIC_URL ? new URL(env.PUBLIC_URL).host : "",
  };
}
