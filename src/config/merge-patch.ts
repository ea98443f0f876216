// JSON Merge Patch (RFC 7386): how a PATCH changes a tenant's config, and how each recorded change
// is described (the patch from one version to the next). Keys come from request bodies: they are
// defined as own properties, so "__proto__" is a key like any other and never reaches a prototype.
import canonicalize from "canonicalize";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function define(target: JsonObject, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function own(target: JsonObject, key: string): Json | undefined {
  return Object.hasOwn(target, key) ? target[key] : undefined;
}

/** `target` with `patch` applied (RFC 7386 section 2); neither is modified. */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const result: JsonObject = {};
  if (isObject(target)) for (const key of Object.keys(target)) define(result, key, target[key]!);
  for (const key of Object.keys(patch)) {
    const value = patch[key]!;
    if (value === null) delete result[key];
    else define(result, key, applyMergePatch(own(result, key), value));
  }
  return result;
}

/**
 * The merge patch that turns `from` into `to`, or undefined when they are equal. A merge patch
 * cannot set a value to null (null deletes), so `to` must hold no null inside an object, which a
 * validated config never does.
 */
export function mergePatchBetween(from: Json | undefined, to: Json): Json | undefined {
  if (!isObject(from) || !isObject(to)) return from !== undefined && canonicalize(from) === canonicalize(to) ? undefined : to;
  const patch: JsonObject = {};
  for (const key of Object.keys(from)) if (!Object.hasOwn(to, key)) define(patch, key, null);
  for (const key of Object.keys(to)) {
    const change = mergePatchBetween(own(from, key), to[key]!);
    if (change !== undefined) define(patch, key, change);
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}

/** Dotted paths of the leaves a merge patch sets or deletes ("limits.maxConcurrency", "backends"). */
export function patchedPaths(patch: Json | undefined, prefix = ""): string[] {
  if (!isObject(patch)) return patch === undefined ? [] : [prefix];
  return Object.keys(patch).flatMap((key) => patchedPaths(patch[key], prefix ? `${prefix}.${key}` : key));
}
