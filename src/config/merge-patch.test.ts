import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Json, applyMergePatch, mergePatchBetween, patchedPaths } from "./merge-patch";

describe("applyMergePatch", () => {
  // RFC 7386, Appendix A.
  const examples: Array<[Json, Json, Json]> = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [
      ["a", "b"],
      ["c", "d"],
      ["c", "d"],
    ],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  it.each(examples)("RFC 7386 A: %j patched with %j is %j", (target, patch, result) => {
    expect(applyMergePatch(target, patch)).toEqual(result);
  });

  it("leaves its inputs alone", () => {
    const target = { a: { b: 1 } };
    applyMergePatch(target, { a: { b: 2, c: 3 } });
    expect(target).toEqual({ a: { b: 1 } });
  });

  it("treats __proto__ as a key: nothing reaches a prototype", () => {
    const patched = applyMergePatch({ a: 1 }, JSON.parse('{"__proto__":{"polluted":true},"b":{"__proto__":{"x":1}}}')) as Record<
      string,
      any
    >;
    expect(Object.hasOwn(patched, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(patched)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(patched.polluted).toBeUndefined();
    expect(Object.getPrototypeOf(patched.b)).toBe(Object.prototype);
  });
});

/** JSON without null inside objects: what a validated config holds. */
const configLike: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.boolean(),
    fc.integer(),
    fc.string(),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom("a", "b", "c", "__proto__", "constructor"), tie("value"), { maxKeys: 4 }),
  ),
})).value;

describe("mergePatchBetween", () => {
  it("gives the patch that turns one document into the other (property)", () => {
    fc.assert(
      fc.property(configLike, configLike, (from, to) => {
        const patch = mergePatchBetween(from, to);
        expect(patch === undefined ? from : applyMergePatch(from, patch)).toEqual(to);
      }),
      { numRuns: 2_000, seed: 20261201 },
    );
  });

  it("is undefined for equal documents and names only what changed", () => {
    expect(mergePatchBetween({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBeUndefined();
    expect(mergePatchBetween({ a: 1, b: { c: 1, d: 2 } }, { b: { c: 1, d: 3 }, e: true })).toEqual({ a: null, b: { d: 3 }, e: true });
  });
});

describe("patchedPaths", () => {
  it("lists the leaves a patch sets or deletes", () => {
    expect(patchedPaths({ limits: { maxConcurrency: 5, shards: null }, backends: [1], models: { chat: { fallbacks: ["x"] } } })).toEqual([
      "limits.maxConcurrency",
      "limits.shards",
      "backends",
      "models.chat.fallbacks",
    ]);
    expect(patchedPaths(undefined)).toEqual([]);
  });
});
