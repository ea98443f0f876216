// The template syntax of workflow steps (docs/workflows.md, "Workflows"): `{{ reference }}` inserts a value, and
// nothing else happens: no expressions, no code. A reference is one of
//   input            the run's input          input.a.b     a field of it
//   steps.<id>       a step's output          steps.<id>.f  a field of a JSON output
//   item             a map step's list item   item.f        a field of it
// In a message, strings go in as they are and other values as JSON; in an effect's JSON body every
// value goes in as JSON (a string with its quotes and escapes), so no output can break out of its
// place in the body. A step that was skipped (an optional one that
// failed) goes in as a marker, MISSING, so a prompt says what is missing instead of passing it off.
// Pure.

const REFERENCE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const SEGMENT = /^[a-zA-Z0-9_-]{1,64}$/;

export type Reference =
  | { root: "input"; path: string[] }
  | { root: "item"; path: string[] }
  | { root: "step"; step: string; path: string[] };

/** What a template names, or why it cannot be read. */
export function parseTemplate(template: string): { references: Reference[] } | { problem: string } {
  const references: Reference[] = [];
  for (const [, text] of template.matchAll(REFERENCE)) {
    const reference = parseReference(text!);
    if (typeof reference === "string") return { problem: reference };
    references.push(reference);
  }
  return { references };
}

/** A reference like `steps.plan.questions`, or what is wrong with it. */
export function parseReference(text: string): Reference | string {
  const parts = text.split(".");
  if (parts.some((p) => !SEGMENT.test(p)))
    return `"{{${text}}}" is not a reference: use input, item or steps.<id>, with .field parts of letters, digits, '_' or '-'`;
  const [root, ...rest] = parts;
  if (root === "input" || root === "item") return { root, path: rest };
  if (root === "steps" && rest.length > 0) return { root: "step", step: rest[0]!, path: rest.slice(1) };
  return `"{{${text}}}" names neither input, item nor steps.<id>`;
}

/** What a step's output reads as in a template. */
export type StepValue = { ok: true; output: unknown } | { ok: false; reason: string };

export interface TemplateScope {
  input: unknown;
  steps: ReadonlyMap<string, StepValue>;
  item?: unknown;
}

/** The marker for a skipped step's output. */
export const missing = (step: string, reason: string) => `[missing: step ${step} was skipped (${reason})]`;

/** The value a reference names in `scope`; undefined when there is none (a field the output lacks). */
export function resolve(reference: Reference, scope: TemplateScope): { value: unknown } | { missing: string } | undefined {
  let value: unknown;
  if (reference.root === "input") value = scope.input;
  else if (reference.root === "item") value = scope.item;
  else {
    const step = scope.steps.get(reference.step);
    if (!step) return undefined;
    if (!step.ok) return { missing: missing(reference.step, step.reason) };
    value = step.output;
  }
  for (const key of reference.path) {
    if (Array.isArray(value) && /^\d+$/.test(key)) value = value[Number(key)];
    else if (value !== null && typeof value === "object" && !Array.isArray(value) && Object.hasOwn(value, key))
      value = (value as Record<string, unknown>)[key];
    else return undefined;
  }
  return value === undefined ? undefined : { value };
}

/**
 * The template with every reference filled in. As "text", a reference with no value becomes an
 * empty string; as "json", every value is JSON and one with no value is null.
 */
export function render(template: string, scope: TemplateScope, as: "text" | "json" = "text"): string {
  return template.replace(REFERENCE, (_whole, text: string) => {
    const reference = parseReference(text);
    const found = typeof reference === "string" ? undefined : resolve(reference, scope);
    const value = found === undefined ? undefined : "missing" in found ? found.missing : found.value;
    if (as === "json") return value === undefined ? "null" : JSON.stringify(value);
    if (value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  });
}

/** Whether a JSON template is JSON whatever its references hold (each stands for one value, never inside a string). */
export function isJsonTemplate(template: string): boolean {
  let inString = false;
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (inString && c === "\\") i++;
    else if (c === '"') inString = !inString;
    else if (inString && c === "{" && template[i + 1] === "{") return false;
  }
  try {
    JSON.parse(template.replace(REFERENCE, "null"));
    return true;
  } catch {
    return false;
  }
}
