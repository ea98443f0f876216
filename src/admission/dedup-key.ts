// Keys of the replay journal: the body hash an Idempotency-Key is bound to, and the semantic key
// under which deterministic requests (temperature 0) share results.
import canonicalize from "canonicalize";
import { sha256Hex } from "../config/store-env";
import type { RecordSpec } from "../gate/core/protocol";

/** Fields that change how an answer is delivered, not what it is: a replay may differ in them. */
const DELIVERY_FIELDS = new Set(["stream", "stream_options"]);

function answerShape(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([k]) => !DELIVERY_FIELDS.has(k)));
}

/** SHA-256 of the request body in canonical form (RFC 8785: sorted keys, one spelling per number), delivery fields left out. */
export function bodyHash(body: Record<string, unknown>): Promise<string> {
  return sha256Hex(canonicalize(answerShape(body)) ?? "");
}

/** A deterministic request: an answer for it can be shared or reused. */
export function isDeterministic(body: Record<string, unknown>): boolean {
  return body.temperature === 0;
}

/** Keyed by tenant, model alias, messages and every generation parameter. */
export async function semanticKey(tenant: string, body: Record<string, unknown>): Promise<string> {
  return `sem:${await sha256Hex(canonicalize([tenant, answerShape(body)]) ?? "")}`;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export function validIdempotencyKey(key: string): boolean {
  return IDEMPOTENCY_KEY.test(key);
}

/**
 * Where a request is recorded in its tenant's journal: under its Idempotency-Key, or, for a
 * deterministic request of a tenant with semantic dedup or stale-if-error, under its semantic key
 * (shared with twins only with semantic dedup). `staleKey` is where a stored answer may be found
 * when every backend fails.
 */
export async function journalKeys(
  tenant: string,
  body: Record<string, unknown>,
  dedup: { semantic: boolean; staleIfError: boolean },
  idempotencyKey: string | undefined,
): Promise<{ record?: RecordSpec; staleKey?: string }> {
  const deterministic = isDeterministic(body);
  const semantic = deterministic && (dedup.semantic || dedup.staleIfError) ? await semanticKey(tenant, body) : undefined;
  const staleKey = dedup.staleIfError ? semantic : undefined;
  if (idempotencyKey !== undefined)
    return { record: { key: `idem:${idempotencyKey}`, kind: "idempotency", bodyHash: await bodyHash(body), shared: true }, staleKey };
  if (semantic) return { record: { key: semantic, kind: "semantic", bodyHash: await bodyHash(body), shared: dedup.semantic }, staleKey };
  return { staleKey };
}
