// SSE framing of what sluice sends to clients. Pure string building; see docs/client-api.md, "Streams".

export interface ErrorBody {
  message: string;
  type: string;
  code: string;
}

/** One `chat.completion.chunk` (as JSON), numbered so a client can reconnect with Last-Event-ID. */
export function chunkEvent(id: number, chunkJson: string): string {
  return `id: ${id}\ndata: ${chunkJson}\n\n`;
}

export function doneEvent(): string {
  return "data: [DONE]\n\n";
}

/** A comment line: ignored by SSE parsers, keeps proxies from timing the connection out. */
export function commentLine(text: string): string {
  return `: ${text.replace(/[\r\n]+/g, " ")}\n\n`;
}

/**
 * The partial-completion error event: the stream ends without [DONE] and the client learns that
 * the text it has is incomplete (the openai SDK raises an APIError here).
 */
export function errorEvent(error: ErrorBody, partial: boolean, completionTokens: number, cut?: string): string {
  return `event: error\ndata: ${JSON.stringify({ error, partial, completion_tokens: completionTokens, ...(cut ? { cut } : {}) })}\n\n`;
}
