// A naive relay that looks at each token: a pass-through Worker that reads every upstream event in
// JavaScript, one read per event, and writes it on, and does nothing else (no parsing, no gate,
// no framing).
// Set against the bare pass-through (which workerd pipes natively) it shows what the platform
// charges per streamed event once JavaScript touches the stream. sluice does its own work on top,
// and under load reads several events at a time, which this relay does not.
import { EVENT_READ_BYTES } from "../src/dispatch/read-size";

interface Env {
  /** Comma-separated base URLs, e.g. http://127.0.0.1:9101/v1 */
  UPSTREAMS: string;
}

let next = 0;

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const upstreams = env.UPSTREAMS.split(",");
    const base = upstreams[next++ % upstreams.length]!;
    const path = new URL(request.url).pathname.replace(/^\/v1/, "");
    const upstream = await fetch(`${base}${path}`, { method: request.method, headers: request.headers, body: request.body });
    if (!upstream.body) return upstream;
    const { readable, writable } = new IdentityTransformStream();
    ctx.waitUntil(relay(upstream.body, writable.getWriter()));
    return new Response(readable, { status: upstream.status, headers: upstream.headers });
  },
};

async function relay(body: ReadableStream<Uint8Array>, writer: WritableStreamDefaultWriter<Uint8Array>): Promise<void> {
  const reader = body.getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(16 * 1024);
  // Reads wait for EVENT_READ_BYTES at an event boundary: one read per event, as sluice reads a
  // quiet isolate's streams (under load sluice takes several events per read; this floor does not).
  let atBoundary = true;
  try {
    for (;;) {
      const { done, value }: ReadableStreamReadResult<Uint8Array> = await reader.readAtLeast(
        atBoundary ? EVENT_READ_BYTES : 1,
        new Uint8Array(buffer),
      );
      if (value && value.byteLength > 0) {
        void writer.write(value.slice());
        atBoundary = value[value.byteLength - 1] === 10 && value[value.byteLength - 2] === 10;
        buffer = value.buffer as ArrayBuffer;
      }
      if (done) break;
    }
    await writer.close();
  } catch (err) {
    await writer.abort(err).catch(() => {});
  }
}
