// An LLM step's answer as its output: the text, or (with `output.format: "json"`) the JSON it holds,
// checked for required fields and against a JSON Schema, so an incomplete answer fails the attempt
// instead of being passed on. Pure (the schema check is @cfworker/json-schema's: no code generation,
// so it runs in Workers).
import { Validator } from "@cfworker/json-schema";
import type { ChatStep } from "./definition";

export type Checked = { ok: true; output: unknown } | { ok: false; problem: string };

/** A reply wrapped in one Markdown code fence, as models often send JSON. */
const FENCED = /^\s*```[a-zA-Z]*\s*\n([\s\S]*?)\n\s*```\s*$/;

export function checkOutput(text: string, spec: ChatStep["output"]): Checked {
  if (!spec) return { ok: true, output: text };
  let value: unknown;
  try {
    value = JSON.parse(FENCED.exec(text)?.[1] ?? text);
  } catch {
    return { ok: false, problem: `the answer is not JSON: ${JSON.stringify(text.slice(0, 80))}${text.length > 80 ? "..." : ""}` };
  }
  for (const path of spec.required ?? []) {
    if (!hasPath(value, path.split("."))) return { ok: false, problem: `the answer's JSON lacks the required field "${path}"` };
  }
  if (spec.schema) {
    const result = new Validator(spec.schema as object, "2020-12", false).validate(value);
    if (!result.valid) {
      const first = result.errors.at(-1);
      return {
        ok: false,
        problem: `the answer's JSON does not match the schema: ${first ? `${first.instanceLocation} ${first.error}` : "invalid"}`,
      };
    }
  }
  return { ok: true, output: value };
}

function hasPath(value: unknown, path: string[]): boolean {
  let at = value;
  for (const key of path) {
    if (at === null || typeof at !== "object" || !Object.hasOwn(at, key)) return false;
    at = (at as Record<string, unknown>)[key];
  }
  return at !== undefined && at !== null;
}
