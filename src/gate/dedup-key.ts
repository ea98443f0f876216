// Keys of the replay journal: the body hash an Idempotency-Key is bound to, and the semantic key
// under which deterministic requests (temperature 0) share results.
import { stringify } from "safe-stable-stringify";
import { sha256Hex } from "../config/store";

/** Fields that change how an answer is delivered, not what it is: a replay may differ in them. */
const DELIVERY_FIELDS = new Set(["stream", "stream_options"]);

function answerShape(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([k]) => !DELIVERY_FIELDS.has(k)));
}

/** SHA-256 of the request body in canonical form (sorted keys), delivery fields left out. */
export function bodyHash(body: Record<string, unknown>): Promise<string> {
  return sha256Hex(stringify(answerShape(body)) ?? "");
}

/** A deterministic request: an answer for it can be shared or reused. */
export function isDeterministic(body: Record<string, unknown>): boolean {
  return body.temperature === 0;
}

/** Keyed by tenant, model alias, messages and every generation parameter. */
export async function semanticKey(tenant: string, body: Record<string, unknown>): Promise<string> {
  return `sem:${await sha256Hex(stringify([tenant, answerShape(body)]) ?? "")}`;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export function validIdempotencyKey(key: string): boolean {
  return IDEMPOTENCY_KEY.test(key);
}
