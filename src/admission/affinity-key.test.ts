import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { affinityKey } from "./affinity-key";
import type { ChatRequest } from "../config/chat-request";

const system = { role: "system" as const, content: "You are a careful assistant. ".repeat(50) };
const turn = (n: number, opening = "Plan my trip to Lisbon."): ChatRequest => ({
  model: "chat",
  messages: [
    system,
    { role: "user", content: opening },
    ...Array.from({ length: n }, (_, i) => [
      { role: "assistant" as const, content: `answer ${i}` },
      { role: "user" as const, content: `follow-up ${i}` },
    ]).flat(),
  ],
});

describe("affinityKey", () => {
  it("is the same for every turn of a conversation, and differs between conversations", () => {
    const keys = [0, 1, 5].map((n) => affinityKey(turn(n)));
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f]{8}$/);
    expect(affinityKey(turn(0, "Plan my trip to Porto."))).not.toBe(keys[0]);
  });

  it("takes the session the client names first: the x-session-id header, then prompt_cache_key, then user", () => {
    const named = { ...turn(0), prompt_cache_key: "conv-7", user: "u-1" } as ChatRequest;
    expect(affinityKey(named, "s-9")).toBe(affinityKey(turn(3, "something else"), "s-9"));
    expect(affinityKey(named)).toBe(affinityKey({ ...turn(2, "other"), prompt_cache_key: "conv-7" } as ChatRequest));
    expect(affinityKey({ ...turn(0), user: "u-1" } as ChatRequest)).toBe(affinityKey({ ...turn(4, "x"), user: "u-1" } as ChatRequest));
    expect(affinityKey({ ...turn(0), user: "u-1" } as ChatRequest)).not.toBe(affinityKey(turn(0)));
  });

  it("property: a key for any conversation, the same for its later turns", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.string({ maxLength: 200 }), fc.nat({ max: 5 }), (sys, first, n) => {
        const base: ChatRequest = {
          model: "m",
          messages: [
            { role: "system", content: sys },
            { role: "user", content: first },
          ],
        };
        const later: ChatRequest = {
          ...base,
          messages: [...base.messages, ...Array.from({ length: n }, () => ({ role: "assistant" as const, content: "x" }))],
        };
        expect(affinityKey(later)).toBe(affinityKey(base));
      }),
    );
  });
});
