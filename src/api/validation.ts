// zod validation for Hono routes that answers in OpenAI's error shape with what is wrong, in words.
import { zValidator } from "@hono/zod-validator";
import { createMiddleware } from "hono/factory";
import type { ZodType } from "zod";
import { describeIssues } from "../config/schema";
import { errorResponse } from "../stream/errors";

export function validJson<T extends ZodType>(schema: T) {
  return zValidator("json", schema, (result) => {
    if (!result.success) return errorResponse(400, "invalid_request", `Invalid request body: ${describeIssues(result.error)}`);
  });
}

/** Rejects bodies not declared as JSON: without this, a form-encoded body would validate as `{}`. */
export const jsonBody = createMiddleware(async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/([\w.+-]+\+)?json\b/i.test(type)) {
    return errorResponse(
      415,
      "unsupported_media_type",
      `The body must be JSON, sent with 'Content-Type: application/json'${type ? `; got '${type}'` : ""}.`,
    );
  }
  await next();
});
