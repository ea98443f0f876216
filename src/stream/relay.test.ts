import { describe, expect, it } from "vitest";
import { chunkEvent, commentLine, doneEvent, errorEvent } from "./sse";
import { StreamProgress } from "./relay";
import { endsAtEventBoundary } from "../dispatch/attempt";
import { describeChunk } from "./chunk";
import { EVENT_READ_BYTES } from "../dispatch/read-size";

const upstream = (delta: Record<string, unknown>, finish: string | null = null) =>
  describeChunk({
    id: "up-1",
    object: "chat.completion.chunk",
    created: 1,
    model: "m",
    choices: [{ index: 0, delta, finish_reason: finish }],
  });

describe("SSE framing", () => {
  it("numbers chunks and frames the end, comments and errors", () => {
    expect(chunkEvent(3, '{"a":1}')).toBe('id: 3\ndata: {"a":1}\n\n');
    expect(doneEvent()).toBe("data: [DONE]\n\n");
    expect(commentLine("resumed backend=b\nat=3")).toBe(": resumed backend=b at=3\n\n");
    expect(errorEvent({ message: "m", type: "upstream_error", code: "c" }, true, 7)).toBe(
      'event: error\ndata: {"error":{"message":"m","type":"upstream_error","code":"c"},"partial":true,"completion_tokens":7}\n\n',
    );
  });
});

describe("upstream reads", () => {
  it("knows when SSE text ends at an event boundary, whatever the line endings", () => {
    expect(endsAtEventBoundary('data: {"a":1}\n\n')).toBe(true);
    expect(endsAtEventBoundary('data: {"a":1}\r\n\r\n')).toBe(true);
    expect(endsAtEventBoundary('data: {"a":1}\r\r')).toBe(true);
    expect(endsAtEventBoundary('data: {"a":1}\n')).toBe(false);
    expect(endsAtEventBoundary('data: {"a"')).toBe(false);
  });

  it("never waits for more bytes than the shortest event that carries a token", () => {
    const shortest = `data: ${JSON.stringify({ choices: [{ delta: { content: "x" } }] })}\n\n`;
    expect(EVENT_READ_BYTES).toBeLessThanOrEqual(new TextEncoder().encode(shortest).byteLength);
  });
});

describe("StreamProgress", () => {
  it("keeps one completion id, sends the role once, and counts tokens", () => {
    const p = new StreamProgress("chatcmpl-x", 42);
    expect(p.frame(upstream({ role: "assistant", content: "" }))).toMatchObject({ id: "chatcmpl-x", created: 42 });
    expect(p.frame(upstream({ content: "Hel" }))).toMatchObject({ choices: [{ delta: { content: "Hel" } }] });
    // A resumed backend starts with its own role delta: dropped, as the client has had one.
    expect(p.frame(upstream({ role: "assistant", content: "" }))).toBeNull();
    const cont = p.frame(upstream({ role: "assistant", content: "lo" }));
    expect(cont).toMatchObject({ choices: [{ delta: { content: "lo" } }] });
    expect((cont as any).choices[0].delta.role).toBeUndefined();
    expect(p.frame(upstream({}, "stop"))).toMatchObject({ choices: [{ finish_reason: "stop" }] });
    expect(p.text).toBe("Hello");
    expect(p.tokens).toBe(3);
  });
});

describe("usage across a resume", () => {
  it("reports the whole answer's usage: the continuation's prompt held the tokens delivered before it", () => {
    const progress = new StreamProgress("chatcmpl-1", 1);
    progress.startAttempt(false);
    for (const t of ["a", " b", " c"]) progress.frame(upstream({ content: t }));
    progress.startAttempt(true);
    progress.frame(upstream({ content: " d" }));
    const usageChunk = describeChunk({ choices: [], usage: { prompt_tokens: 13, completion_tokens: 2, total_tokens: 15 } });
    expect(progress.frame(usageChunk)?.usage).toEqual({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
    // An uninterrupted answer's usage passes as the backend sent it.
    const plain = new StreamProgress("chatcmpl-2", 1);
    plain.startAttempt(false);
    const own = describeChunk({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } });
    expect(plain.frame(own)?.usage).toEqual({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
  });
});
