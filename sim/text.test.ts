import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { completionFor, continuationFor, expectedText } from "./text";

describe("sim text", () => {
  it("is deterministic and depends on model, messages and seed", () => {
    const key = { model: "m", messages: [{ role: "user", content: "hi" }] };
    expect(expectedText(key)).toBe(expectedText(key));
    expect(expectedText(key)).not.toBe(expectedText({ ...key, model: "n" }));
    expect(expectedText(key)).not.toBe(expectedText({ ...key, seed: 7 }));
    expect(completionFor({ ...key, maxTokens: 9 })).toMatchObject({ finishReason: "length" });
    expect(completionFor({ ...key, maxTokens: 9 }).tokens).toHaveLength(9);
  });

  it("continues any prefix to exactly the uninterrupted text (property)", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 20 }),
        fc.option(fc.integer({ min: 1, max: 80 }), { nil: undefined }),
        fc.nat(),
        (content, maxTokens, cut) => {
          const key = { model: "m", messages: [{ role: "user", content }] };
          const full = completionFor({ ...key, maxTokens });
          const k = cut % (full.tokens.length + 1);
          const prefix = full.tokens.slice(0, k).join("");
          const rest = continuationFor(key, prefix, maxTokens === undefined ? undefined : maxTokens - k);
          expect(prefix + rest.tokens.join("")).toBe(full.tokens.join(""));
          expect(rest.finishReason).toBe(full.finishReason);
        },
      ),
    );
  });
});
