import { describe, expect, it } from "vitest";
import { bodyHash, journalKeys, validIdempotencyKey } from "./dedup-key";

const body = { model: "chat", messages: [{ role: "user", content: "hi" }], temperature: 0 };

describe("journal keys", () => {
  it("hashes the body canonically, leaving out how it is delivered", async () => {
    const reordered = { temperature: 0, messages: body.messages, model: "chat", stream: true, stream_options: { include_usage: true } };
    expect(await bodyHash(reordered)).toBe(await bodyHash(body));
    expect(await bodyHash({ ...body, max_tokens: 5 })).not.toBe(await bodyHash(body));
  });

  it("records under the Idempotency-Key, else a semantic key for deterministic requests of a deduping tenant", async () => {
    const off = { semantic: false, staleIfError: false };
    expect(await journalKeys("t", body, off, "k1")).toMatchObject({ record: { key: "idem:k1", kind: "idempotency", shared: true } });
    expect(await journalKeys("t", body, off, undefined)).toEqual({});
    const semantic = await journalKeys("t", body, { semantic: true, staleIfError: false }, undefined);
    expect(semantic.record).toMatchObject({ kind: "semantic", shared: true, key: expect.stringMatching(/^sem:[0-9a-f]{64}$/) });
    // Another tenant's identical request never meets this one's.
    expect((await journalKeys("u", body, { semantic: true, staleIfError: false }, undefined)).record!.key).not.toBe(semantic.record!.key);
    const stale = await journalKeys("t", body, { semantic: false, staleIfError: true }, undefined);
    expect(stale).toMatchObject({ record: { kind: "semantic", shared: false }, staleKey: semantic.record!.key });
    expect(await journalKeys("t", { ...body, temperature: 0.7 }, { semantic: true, staleIfError: true }, undefined)).toEqual({});
  });

  it("accepts 1-255 visible ASCII characters as a key", () => {
    expect(validIdempotencyKey("job-1:retry")).toBe(true);
    expect(validIdempotencyKey("")).toBe(false);
    expect(validIdempotencyKey("has space")).toBe(false);
    expect(validIdempotencyKey("x".repeat(256))).toBe(false);
  });
});
