// Where sluice may send a request it makes on a tenant's behalf (an alert or generation webhook, a
// workflow's effect): the rules of a backend's URL (config/backend-url.ts). A tenant admin sets those
// URLs, so a loopback or private one needs the operator's allowance (outbound.allowPrivateHosts, an
// operator-only field) on top of the deployment's ALLOW_LOCAL_BACKENDS; without a config, none.
import type { Env } from "../env";
import { type BackendUrlPolicy, routerHostOf } from "../config/backend-url";
import type { TenantConfig } from "../config/schema";

export function outboundUrlPolicy(env: Pick<Env, "ALLOW_LOCAL_BACKENDS" | "PUBLIC_URL">, config?: TenantConfig): BackendUrlPolicy {
  return {
    allowLocal: env.ALLOW_LOCAL_BACKENDS === "true" && config?.outbound.allowPrivateHosts === true,
    routerHost: routerHostOf(env.PUBLIC_URL),
    localAllowedBy: 'the operator sets outbound.allowPrivateHosts for this tenant (and the deployment ALLOW_LOCAL_BACKENDS = "true")',
  };
}

/** Where the operator's backends may live: the deployment's rule alone. */
export function backendUrlPolicy(env: Pick<Env, "ALLOW_LOCAL_BACKENDS" | "PUBLIC_URL">): BackendUrlPolicy {
  return { allowLocal: env.ALLOW_LOCAL_BACKENDS === "true", routerHost: routerHostOf(env.PUBLIC_URL) };
}
