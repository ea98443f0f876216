// Reads a body whole, within a size and a time: a request's (api/validation.ts), or an answer sluice
// reads from a third party (a workflow's effect). Never holds more than `maxBytes`.

export type BodyRead = { kind: "read"; bytes: Uint8Array } | { kind: "too_large" } | { kind: "timeout" } | { kind: "broken" };

export async function readWithin(body: ReadableStream<Uint8Array> | null, maxBytes: number, timeoutMs: number): Promise<BodyRead> {
  if (!body) return { kind: "read", bytes: new Uint8Array() };
  const reader = body.getReader();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void reader.cancel().catch(() => {});
  }, timeoutMs);
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (timedOut) return { kind: "timeout" };
      if (done) return { kind: "read", bytes: concat(chunks, bytes) };
      bytes += value.byteLength;
      if (bytes > maxBytes) {
        await reader.cancel().catch(() => {});
        return { kind: "too_large" };
      }
      chunks.push(value);
    }
  } catch {
    return timedOut ? { kind: "timeout" } : { kind: "broken" };
  } finally {
    clearTimeout(timer);
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const all = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return all;
}
