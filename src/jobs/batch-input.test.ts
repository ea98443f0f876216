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
    expect(bad(line("a").replace("/v1/chat/completions", "/v1/embeddings"))).toBe(
      'line 1: url: url must be "/v1/chat/completions" (the one endpoint batches run)',
    );
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

  it(`refuses more than ${MAX_BATCH_LINES} lines`, () => {
    const lines = Array.from({ length: MAX_BATCH_LINES + 1 }, (_, i) => line(`l${i}`));
    expect(parseBatchInput(file(...lines))).toEqual({
      ok: false,
      message: `line ${MAX_BATCH_LINES + 1}: a batch file holds at most ${MAX_BATCH_LINES} lines`,
    });
  });
});
