// JSON request bodies: the media type, the size, the time to read them, the nesting depth, and a
// zod schema, each refused with a 4xx in OpenAI's error shape that says what is wrong.
import { createMiddleware } from "hono/factory";
import { validator } from "hono/validator";
import type { Context, Env } from "hono";
import type { output, ZodType } from "zod";
import { describeIssues } from "../config/schema";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../config/json-depth";
import { errorResponse } from "../stream/errors";
import { readWithin } from "../stream/read-within";

/**
 * The media type of a Content-Type value, without parameters, if it is JSON: `application/json`
 * or `application/<something>+json`. Not `application/json-seq`, not a list of types.
 */
export function isJsonMediaType(contentType: string): boolean {
  const essence = contentType.split(";", 1)[0]!.trim().toLowerCase();
  return /^application\/(?:[a-z0-9!#$&^_.-]+\+)?json$/.test(essence);
}

/** Rejects bodies not declared as JSON: without this, a form-encoded body would validate as `{}`. */
export const jsonBody = createMiddleware(async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  if (!isJsonMediaType(type)) {
    return errorResponse(
      415,
      "unsupported_media_type",
      `The body must be JSON, sent with 'Content-Type: application/json'${type ? `; got '${type.slice(0, 100)}'` : ""}.`,
    );
  }
  await next();
});

export interface BodyLimits {
  maxBytes: number;
  /** From the first byte asked for to the last: a client that never finishes its body is cut off. */
  readTimeoutMs: number;
}

/**
 * Reads the whole body within its limits before anything parses it: 413 past `maxBytes`, 408
 * when it takes longer than `readTimeoutMs`. Later readers (the validator) get it from Hono's cache.
 */
export function boundedBody<E extends Env>(limits: (c: Context<E>) => BodyLimits) {
  return createMiddleware<E>(async (c, next) => {
    const { maxBytes, readTimeoutMs } = limits(c);
    const read = await readBodyWithin(c.req.raw, { maxBytes, readTimeoutMs });
    if (read instanceof Response) return read;
    // Hono keeps a read body as a promise under its type's name (its declared type says otherwise).
    (c.req.bodyCache as Record<string, Promise<string>>).text = Promise.resolve(new TextDecoder().decode(read));
    await next();
  });
}

/** The request's whole body within its limits, or the 4xx that says why not (see boundedBody). */
export async function readBodyWithin(request: Request, limits: BodyLimits): Promise<Uint8Array | Response> {
  const { maxBytes, readTimeoutMs } = limits;
  if (Number(request.headers.get("content-length") ?? Number.NaN) > maxBytes) return tooLarge(maxBytes);
  const read = await readWithin(request.body, maxBytes, readTimeoutMs);
  if (read.kind === "too_large") return tooLarge(maxBytes);
  if (read.kind === "timeout")
    return errorResponse(408, "request_timeout", `The request body did not arrive within ${readTimeoutMs} ms; send it whole.`);
  if (read.kind === "broken") return errorResponse(400, "body_unreadable", "The request body broke off before its end.");
  return read.bytes;
}

const tooLarge = (maxBytes: number) => errorResponse(413, "body_too_large", `The request body is larger than ${maxBytes} bytes.`);

/** Validates the JSON body against `schema`, after refusing one nested deeper than MAX_JSON_DEPTH. */
export function validJson<T extends ZodType>(schema: T) {
  return validator("json", (value): output<T> | Response => {
    if (nestsDeeperThan(value, MAX_JSON_DEPTH))
      return errorResponse(400, "json_too_deep", `The request body nests objects or arrays more than ${MAX_JSON_DEPTH} deep.`);
    const result = schema.safeParse(value);
    if (!result.success) return errorResponse(400, "invalid_request", `Invalid request body: ${describeIssues(result.error)}`);
    return result.data as output<T>;
  });
}
