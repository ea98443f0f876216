// A tenant's keys in KV, never stored in clear: API keys (chat) and admin keys (the tenant's own
// admin API) are two keyrings, so a key of one kind is never found as the other.
//   <owner prefix><sha256 hex>   the key's record: its tenant, and an API key's name, metadata, expiry and limits
//                                (a record written before keys had rules is the tenant's id alone)
//   <list prefix><tenant>        the tenant's key hashes, in the order added (so deleting a tenant revokes them)
// Lookups are by the key's SHA-256: what a lookup's timing could tell is about hashes, not keys.
import { TtlCache } from "./cache";
import { type StoreEnv, cacheTtlMs, sha256Hex } from "./store-env";
import type { KeyRules } from "./key-rules";

export type AddKeyResult = { ok: true; id: string } | { ok: false; reason: "taken" | "limit" };

/** What KV holds for a key. */
export interface KeyRecord extends KeyRules {
  tenant: string;
  /** ISO 8601: when it was issued (absent on records from before keys had rules). */
  createdAt?: string;
}

/** A key found: its tenant, its id and its record. */
export type FoundKey = { tenant: string; id: string; record: KeyRecord };

function parseRecord(raw: string | null): KeyRecord | null {
  if (raw === null) return null;
  return raw.startsWith("{") ? (JSON.parse(raw) as KeyRecord) : { tenant: raw };
}

/**
 * A key's id: the first 16 hex digits of its SHA-256 hash. It names a key in listings and
 * revocations without revealing it (the key itself is shown once, when it is added).
 */
export const keyId = (hash: string): string => hash.slice(0, 16);

export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;

export class Keyring {
  private readonly owners = new TtlCache<KeyRecord | null>(10_000);
  /** Key -> its hash, so a known key costs no digest per request (isolate memory only). */
  private readonly hashes = new TtlCache<string>(10_000);

  constructor(
    private readonly ownerPrefix: string,
    private readonly listPrefix: string,
    /** Keys a tenant may hold at once. */
    readonly maxPerTenant: number,
  ) {}

  private async tenantHashes(env: StoreEnv, tenant: string): Promise<string[]> {
    return ((await env.CONFIG.get(`${this.listPrefix}${tenant}`, "json")) as string[] | null) ?? [];
  }

  /** The ids of the tenant's keys, in the order they were added. */
  async list(env: StoreEnv, tenant: string): Promise<string[]> {
    return (await this.tenantHashes(env, tenant)).map(keyId);
  }

  async add(env: StoreEnv, tenant: string, key: string, rules: KeyRules = {}): Promise<AddKeyResult> {
    const hash = await sha256Hex(key);
    const owner = parseRecord(await env.CONFIG.get(`${this.ownerPrefix}${hash}`));
    if (owner !== null && owner.tenant !== tenant) return { ok: false, reason: "taken" };
    const hashes = await this.tenantHashes(env, tenant);
    if (!hashes.includes(hash)) {
      if (hashes.length >= this.maxPerTenant) return { ok: false, reason: "limit" };
      hashes.push(hash);
      await env.CONFIG.put(`${this.listPrefix}${tenant}`, JSON.stringify(hashes));
    }
    const record: KeyRecord = { tenant, ...rules, createdAt: new Date().toISOString() };
    await env.CONFIG.put(`${this.ownerPrefix}${hash}`, JSON.stringify(record));
    this.owners.set(hash, record, cacheTtlMs(env));
    return { ok: true, id: keyId(hash) };
  }

  /** The records of the tenant's keys, in the order added (a KV read each not in the isolate's cache: at most maxPerTenant). */
  async records(env: StoreEnv, tenant: string): Promise<Array<{ id: string; record: KeyRecord }>> {
    const hashes = await this.tenantHashes(env, tenant);
    const records = await Promise.all(hashes.map((h) => this.record(env, h)));
    return hashes.flatMap((h, i) => (records[i] ? [{ id: keyId(h), record: records[i]! }] : []));
  }

  /**
   * Replaces the rules of the tenant's key with this id (its tenant and issue time stay). Returns
   * the new record, or null when the tenant has no such key. Isolates see it within
   * CONFIG_CACHE_TTL_SECONDS.
   */
  async update(env: StoreEnv, tenant: string, id: string, rules: KeyRules): Promise<KeyRecord | null> {
    const hash = (await this.tenantHashes(env, tenant)).find((h) => keyId(h) === id);
    const current = hash === undefined ? null : parseRecord(await env.CONFIG.get(`${this.ownerPrefix}${hash}`));
    if (!hash || !current || current.tenant !== tenant) return null;
    const record: KeyRecord = { ...rules, tenant, ...(current.createdAt ? { createdAt: current.createdAt } : {}) };
    await env.CONFIG.put(`${this.ownerPrefix}${hash}`, JSON.stringify(record));
    this.owners.set(hash, record, cacheTtlMs(env));
    return record;
  }

  /**
   * Revokes the tenant's key with this id. Returns whether it had one. Isolates that looked the key
   * up in the last CONFIG_CACHE_TTL_SECONDS may still accept it until their cache expires.
   */
  async revoke(env: StoreEnv, tenant: string, id: string): Promise<boolean> {
    const hashes = await this.tenantHashes(env, tenant);
    const hash = hashes.find((h) => keyId(h) === id);
    if (!hash) return false;
    await env.CONFIG.delete(`${this.ownerPrefix}${hash}`);
    await env.CONFIG.put(`${this.listPrefix}${tenant}`, JSON.stringify(hashes.filter((h) => h !== hash)));
    this.owners.delete(hash);
    return true;
  }

  /** Revokes every key of the tenant (it is being deleted). */
  async revokeAll(env: StoreEnv, tenant: string): Promise<void> {
    const hashes = await this.tenantHashes(env, tenant);
    await Promise.all([
      ...hashes.map((h) => env.CONFIG.delete(`${this.ownerPrefix}${h}`)),
      env.CONFIG.delete(`${this.listPrefix}${tenant}`),
    ]);
    for (const h of hashes) this.owners.delete(h);
  }

  /** The tenant a key belongs to, the key's id and its record, or null for a key of no tenant. */
  async lookup(env: StoreEnv, key: string): Promise<FoundKey | null> {
    let hash = this.hashes.get(key);
    if (hash === undefined) this.hashes.set(key, (hash = await sha256Hex(key)), cacheTtlMs(env));
    const record = await this.record(env, hash);
    return record === null ? null : { tenant: record.tenant, id: keyId(hash), record };
  }

  /** The record under a key's hash, from the isolate's cache or KV. */
  private async record(env: StoreEnv, hash: string): Promise<KeyRecord | null> {
    let record = this.owners.get(hash);
    if (record === undefined) {
      record = parseRecord(await env.CONFIG.get(`${this.ownerPrefix}${hash}`));
      this.owners.set(hash, record, cacheTtlMs(env));
    }
    return record;
  }
}

/** API keys: `Authorization: Bearer <key>` on /v1 (at most 100 a tenant). */
export const apiKeys = new Keyring("key:", "tenant-keys:", 100);

/** Tenant admin keys: the tenant's own admin routes (at most 20 a tenant), issued by the operator. */
export const adminKeys = new Keyring("admin-key:", "tenant-admin-keys:", 20);

/** A new key: 32 random bytes, base64url, after a prefix that says what it is ("sluice-admin-", "sluice-"). */
export function newKey(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `${prefix}${btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "")}`;
}
