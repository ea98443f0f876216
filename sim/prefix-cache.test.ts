import { describe, expect, it } from "vitest";
import { PrefixCache } from "./prefix-cache";

const system = { role: "system", content: "S".repeat(400) };
const user = (text: string) => ({ role: "user", content: text });

describe("PrefixCache", () => {
  it("finds a conversation's earlier turns: the cached share of the prompt, counted in tokens", () => {
    const cache = new PrefixCache(() => 100);
    expect(cache.serve([system, user("A".repeat(100))])).toBe(0);
    const share = cache.serve([system, user("A".repeat(100)), { role: "assistant", content: "B".repeat(100) }, user("C".repeat(100))]);
    const len = (role: string, n: number) => role.length + 1 + n;
    expect(share).toBeCloseTo(
      (len("system", 400) + len("user", 100)) / (len("system", 400) + len("user", 100) + len("assistant", 100) + len("user", 100)),
    );
    expect(cache.hitTokens).toBe(Math.ceil((len("system", 400) + len("user", 100)) / 4));
  });

  it("caches the answer it generated after the prompt: the next turn that resends it finds it", () => {
    const cache = new PrefixCache(() => 100);
    cache.serve([system, user("A")], "the answer");
    const total = "system:".length + 400 + "user:A".length + "assistant:the answer".length + "user:B".length;
    // All but the new question.
    expect(cache.serve([system, user("A"), { role: "assistant", content: "the answer" }, user("B")])).toBeCloseTo((total - 6) / total);
    // Another answer than the one generated is not in the cache: only what came before it is.
    const edited = total - "the answer".length + "edited".length;
    expect(cache.serve([system, user("A"), { role: "assistant", content: "edited" }, user("B")])).toBeCloseTo((407 + 6) / edited);
  });

  it("counts only leading blocks: the same message after a different one is not a hit", () => {
    const cache = new PrefixCache(() => 100);
    cache.serve([system, user("A")]);
    expect(cache.serve([{ role: "system", content: "other" }, user("A")])).toBe(0);
  });

  it("forgets the least recently used blocks beyond its capacity", () => {
    const cache = new PrefixCache(() => 2);
    cache.serve([system, user("A")]);
    cache.serve([{ role: "system", content: "x" }, user("B")]);
    expect(cache.serve([system, user("A")])).toBe(0);
  });
});
