// What the KV-backed stores need of the Worker's environment, and their shared helpers.

export interface StoreEnv {
  CONFIG: KVNamespace;
  CONFIG_CACHE_TTL_SECONDS?: string;
}

/** How long an isolate trusts what it read from KV (CONFIG_CACHE_TTL_SECONDS, 5 s by default). */
export function cacheTtlMs(env: StoreEnv): number {
  const seconds = Number(env.CONFIG_CACHE_TTL_SECONDS ?? "5");
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 5000;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
