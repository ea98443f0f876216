// The template syntax of workflow steps (README, "Workflows"): `{{ reference }}` inserts a value, and
// nothing else happens: no expressions, no code. A reference is one of
//   input            the run's input          input.a.b     a field of it
//   steps.<id>       a step's output          steps.<id>.f  a field of a JSON output
//   item             a map step's list item   item.f        a field of it
// Strings go in as they are, other values as JSON. A step that was skipped (an optional one that
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

/** The template with every reference filled in; a reference with no value becomes an empty string. */
export function render(template: string, scope: TemplateScope): string {
  return template.replace(REFERENCE, (_whole, text: string) => {
    const reference = parseReference(text);
    if (typeof reference === "string") return "";
    const found = resolve(reference, scope);
    if (!found) return "";
    if ("missing" in found) return found.missing;
    return typeof found.value === "string" ? found.value : JSON.stringify(found.value);
  });
}
