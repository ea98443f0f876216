import { describe, expect, it } from "vitest";
import { MAX_BATCH_LINES, parseBatchInput, parseBatchLine } from "./batch-input";

const line = (id: string, body: Record<string, unknown> = {}) =>
  JSON.stringify({
    custom_id: id,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model: "chat", messages: [{ role: "user", content: id }], ...body },
  });
const file = (...lines: string[]) => new TextEncoder().encode(lines.join("\n"));

describe("batch input files", () => {
  it("indexes each line's bytes, skipping blank lines, so one line can be read alone", () => {
    const text = `${line("a")}\n\n${line("b")}\n`;
    const parsed = parseBatchInput(new TextEncoder().encode(text));
    if (!parsed.ok) throw new Error(parsed.message);
    expect(parsed.customIds).toEqual(["a", "b"]);
    const bytes = new TextEncoder().encode(text);
    const lines = parsed.offsets.map(([offset, length]) => new TextDecoder().decode(bytes.subarray(offset, offset + length)));
    expect(lines.map((l) => parseBatchLine(l).custom_id)).toEqual(["a", "b"]);
  });

  it("names the first bad line and what is wrong with it", () => {
    const bad = (text: string) => {
      const parsed = parseBatchInput(new TextEncoder().encode(text));
      return parsed.ok ? "ok" : parsed.message;
    };
    expect(bad(`${line("a")}\n{"custom_id": "b"`)).toBe("line 2: is not JSON");
    expect(bad(`${line("a")}\n${line("a")}`)).toBe('line 2: custom_id "a" is used by an earlier line');
    expect(bad(line("a").replace("/v1/chat/completions", "/v1/images"))).toBe(
      "line 1: url: url must be one of /v1/chat/completions, /v1/responses, /v1/embeddings",
    );
    expect(bad(line("a").replace("/v1/chat/completions", "/v1/embeddings"))).toMatch(/^line 1: body\.input: input must be a string/);
    expect(bad(line("a", { stream: true }))).toBe("line 1: body: body.stream must not be true: a batch line's answer is stored whole");
    expect(bad(line("a", { messages: [] }))).toBe("line 1: body.messages: messages must hold at least one message");
    expect(bad("\n\n")).toBe("the file holds no request");
    // As the chat route refuses such a body (json_too_deep): hashing it for its key would overflow the stack.
    const deep = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
    expect(bad(`${line("a")}\n${line("b", { user_data: 0 }).replace('"user_data":0', `"user_data":${deep}`)}`)).toBe(
      "line 2: nests objects or arrays more than 64 deep",
    );
    expect(parseBatchInput(new Uint8Array([0xff, 0xfe]))).toEqual({ ok: false, message: "line 1: is not UTF-8" });
  });

  it("takes lines for the Responses API and for embeddings, one endpoint a file", () => {
    const of = (url: string, id: string, body: Record<string, unknown>) => JSON.stringify({ custom_id: id, method: "POST", url, body });
    const responses = parseBatchInput(
      file(of("/v1/responses", "r1", { model: "chat", input: "hi" }), of("/v1/responses", "r2", { model: "chat", input: "yo" })),
    );
    expect(responses).toMatchObject({ ok: true, endpoint: "/v1/responses", customIds: ["r1", "r2"] });
    expect(parseBatchInput(file(of("/v1/embeddings", "e1", { model: "chat", input: ["a", "b"] })))).toMatchObject({
      ok: true,
      endpoint: "/v1/embeddings",
    });
    const bad = (text: Uint8Array) => {
      const parsed = parseBatchInput(text);
      return parsed.ok ? "ok" : parsed.message;
    };
    expect(bad(file(line("a"), of("/v1/embeddings", "e1", { model: "chat", input: "x" })))).toBe(
      "line 2: url is /v1/embeddings, where the lines before use /v1/chat/completions: a batch runs one endpoint",
    );
    expect(bad(file(of("/v1/responses", "r", { model: "chat", input: "hi", previous_response_id: "resp_1" })))).toMatch(
      /previous_response_id is not supported in a batch/,
    );
    expect(bad(file(of("/v1/responses", "r", { model: "chat", input: "hi", stream: true })))).toMatch(/stream must not be true/);
  });

  it(`refuses more than ${MAX_BATCH_LINES} lines`, () => {
    const lines = Array.from({ length: MAX_BATCH_LINES + 1 }, (_, i) => line(`l${i}`));
    expect(parseBatchInput(file(...lines))).toEqual({
      ok: false,
      message: `line ${MAX_BATCH_LINES + 1}: a batch file holds at most ${MAX_BATCH_LINES} lines`,
    });
  });
});
