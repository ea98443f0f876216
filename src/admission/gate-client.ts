// The Worker's handle on a tenant's gate. A Durable Object stub that saw its object reset (deploy,
// eviction, abortAllDurableObjects) keeps failing, so each call that fails is tried once more on a
// fresh stub. Leases and breakers live in the object's storage and survive; an admission that
// was queued is simply made again.
import type { TenantGate } from "../gate/tenant-gate";
import { gateName } from "./gate-naming";

/** The gate's RPC methods, with the plain types they are declared with. */
export type GateApi = Pick<
  TenantGate,
  | "admit"
  | "poll"
  | "renew"
  | "firstToken"
  | "hedge"
  | "hedgeEnded"
  | "checkpoint"
  | "retry"
  | "adopt"
  | "settle"
  | "cancel"
  | "follow"
  | "storedAnswer"
  | "applyConfig"
  | "erase"
  | "stats"
  | "spend"
>;

/** The handle on one of a tenant's gates: `gateName(tenant, shard)` (shards.ts). */
export function gateClient(namespace: DurableObjectNamespace<TenantGate>, name: string): GateApi {
  // RPC stubs wrap every result type; the values are the plain data the methods return.
  const fresh = () => namespace.get(namespace.idFromName(name)) as unknown as GateApi;
  let stub = fresh();
  const call =
    <K extends keyof GateApi>(method: K) =>
    async (...args: Parameters<GateApi[K]>): Promise<Awaited<ReturnType<GateApi[K]>>> => {
      const invoke = () => (stub[method] as (...a: Parameters<GateApi[K]>) => ReturnType<GateApi[K]>)(...args);
      try {
        return await invoke();
      } catch {
        stub = fresh();
        return await invoke();
      }
    };
  return {
    admit: call("admit"),
    poll: call("poll"),
    renew: call("renew"),
    firstToken: call("firstToken"),
    hedge: call("hedge"),
    hedgeEnded: call("hedgeEnded"),
    checkpoint: call("checkpoint"),
    retry: call("retry"),
    adopt: call("adopt"),
    settle: call("settle"),
    cancel: call("cancel"),
    follow: call("follow"),
    storedAnswer: call("storedAnswer"),
    applyConfig: call("applyConfig"),
    erase: call("erase"),
    stats: call("stats"),
    spend: call("spend"),
  };
}

/** Handles on a tenant's first `count` gates (its shards). */
export function gatesOf(namespace: DurableObjectNamespace<TenantGate>, tenant: string, count: number): GateApi[] {
  return Array.from({ length: count }, (_, shard) => gateClient(namespace, gateName(tenant, shard)));
}
