// The SSE sink on workerd's own streams: text that comes while the client is not reading waits and
// goes out whole and in order, a slow client makes the relay wait, and a client that stops reading
// altogether is let go.
import { describe, expect, it } from "vitest";
import { SseSink } from "./sse-sink";
import type { FramedChunk } from "./sink";

const chunk = (content: string): FramedChunk => {
  const c = { choices: [{ index: 0, delta: { content } }] };
  return { chunk: c, json: JSON.stringify(c) };
};

async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value, { stream: true });
  return text;
}

/** Whether `p` settles before `ms` pass. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return settled;
}

describe("SseSink", () => {
  it("delivers everything sent while the client was not reading, once and in order", async () => {
    const sink = new SseSink(() => ({}));
    for (let i = 0; i < 50; i++) await sink.send([chunk(`t${i}`)]);
    const done = sink.finish();
    const res = await sink.response;
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const text = await readAll(res.body!.getReader());
    await done;
    const expected = Array.from({ length: 50 }, (_, i) => `id: ${i + 1}\ndata: ${chunk(`t${i}`).json}\n\n`).join("") + "data: [DONE]\n\n";
    expect(text).toBe(expected);
  });

  it("makes the relay wait while a slow client has a backlog, and lets it go on once the client reads", async () => {
    const sink = new SseSink(() => ({}));
    await sink.send([chunk("first")]);
    const big = chunk("x".repeat(70 * 1024));
    const waiting = sink.send([big]);
    expect(await settlesWithin(waiting, 50)).toBe(false);
    const reader = (await sink.response).body!.getReader();
    await reader.read();
    // Reading lets it go on: it settles (a wait that never ends fails the test at its timeout).
    await waiting;
    const done = sink.finish();
    const rest = await readAll(reader);
    await done;
    expect(rest).toContain(big.json);
    expect(rest.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("keeps a silent stream open with a comment that says what the client waits for", async () => {
    const sink = new SseSink(() => ({ "x-request-id": "r1" }), { keepaliveMs: 150 });
    // Nothing sent yet: the keepalive itself starts the response, with the request's headers.
    const res = await sink.response;
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("r1");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    expect(decoder.decode((await reader.read()).value)).toBe(": queued\n\n");
    sink.setPhase("waiting");
    expect(decoder.decode((await reader.read()).value)).toBe(": waiting\n\n");
    await sink.send([chunk("t")]);
    expect(decoder.decode((await reader.read()).value)).toBe(`id: 1\ndata: ${chunk("t").json}\n\n`);
    expect(decoder.decode((await reader.read()).value)).toBe(": keepalive\n\n");
    const done = sink.finish();
    expect(await readAll(reader)).toBe("data: [DONE]\n\n");
    await done;
  });

  it("answers a failure with its status until a keepalive started the response, then with the error event", async () => {
    const before = new SseSink(() => ({}), { keepaliveMs: 60_000 });
    await before.fail({ status: 504, code: "queue_timeout", message: "waited too long" }, 0);
    const early = await before.response;
    expect(early.status).toBe(504);
    expect(((await early.json()) as any).error.code).toBe("queue_timeout");

    const after = new SseSink(() => ({}), { keepaliveMs: 150 });
    const res = await after.response; // started by the keepalive
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe(": queued\n\n");
    const failing = after.fail({ status: 504, code: "queue_timeout", message: "waited too long" }, 0);
    const event = await readAll(reader);
    await failing;
    expect(event.startsWith("event: error\ndata: ")).toBe(true);
    expect(JSON.parse(event.slice("event: error\ndata: ".length))).toMatchObject({
      error: { code: "queue_timeout", message: "waited too long" },
      partial: false,
      completion_tokens: 0,
    });
  });

  it("treats a client that stops reading as gone, and frees a relay waiting on it", async () => {
    const sink = new SseSink(() => ({}), { clientStallMs: 300 });
    await sink.send([chunk("first")]);
    await sink.response; // the client has the headers and never reads the body
    const waiting = sink.send([chunk("y".repeat(70 * 1024))]);
    const gone = new Promise<void>((resolve) => sink.clientGone.addEventListener("abort", () => resolve(), { once: true }));
    // Both settle (whether the relay's send resolves or rejects); one that never did would time the test out.
    await gone;
    await waiting.catch(() => {});
    expect(sink.clientGone.aborted).toBe(true);
    await expect(sink.send([chunk("late")])).rejects.toThrow("stream closed");
  });
});
