import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { redact, redactionsOf } from "./redact";

const backends = [{ url: "http://gpu-7.internal.example:8000/v1", apiKey: "Zq8-unusual-secret" }, { url: "http://10.2.3.4:9101/v1" }];
const r = redactionsOf(backends);

describe("redact", () => {
  it("takes the backends' keys and hosts, URLs, addresses and credential-shaped tokens out of foreign text", () => {
    const body = '{"error":"invalid key Zq8-unusual-secret for http://gpu-7.internal.example:8000/v1/chat/completions"}';
    expect(redact(body, r)).toBe('{"error":"invalid key [redacted] for [url]"}');
    expect(redact("TypeError: connect ECONNREFUSED 10.2.3.4:9101", r)).toBe("TypeError: connect ECONNREFUSED [host]");
    expect(redact("host gpu-7.internal.example said no", r)).toBe("host [host] said no");
    expect(redact("Authorization: Bearer abc.def-ghi", r)).toBe("Authorization: Bearer [redacted]");
    expect(redact("got sk-live-0123456789 back", r)).toBe("got [redacted] back");
    expect(redact("The backend is overloaded.", r)).toBe("The backend is overloaded.");
  });

  it("property: a key of the tenant's never survives, wherever it sits in the text", () => {
    fc.assert(
      // Hex keys of 8 or more: no such key is part of the "[redacted]" that replaces it.
      fc.property(fc.stringMatching(/^[0-9a-f]{8,40}$/), fc.string(), fc.string(), (key, before, after) => {
        const text = `${before}${key}${after}`;
        expect(redact(text, { secrets: [key], hosts: [] })).not.toContain(key);
      }),
    );
  });
});
