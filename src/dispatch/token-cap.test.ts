import { describe, expect, it } from "vitest";
import { completionChunkCap } from "./token-cap";

describe("completionChunkCap", () => {
  it("allows the requested tokens plus a margin of 16 or 10%, whichever is larger", () => {
    expect(completionChunkCap({ max_tokens: 5 })).toBe(21);
    expect(completionChunkCap({ max_tokens: 1_000 })).toBe(1_100);
    expect(completionChunkCap({ max_tokens: 1_001 })).toBe(1_102);
  });

  it("prefers max_completion_tokens, as backends do", () => {
    expect(completionChunkCap({ max_tokens: 1_000, max_completion_tokens: 10 })).toBe(26);
  });

  it("has no cap when the client set none", () => {
    expect(completionChunkCap({})).toBeUndefined();
    expect(completionChunkCap({ max_tokens: null })).toBeUndefined();
  });
});
