// The load generator: streaming chat calls over node:http with keep-alive, each classified
// against the deterministic text the sims produce.
import http from "node:http";
import { SseTranscript } from "../test/support/sse-transcript";
import { MessagesTranscript, ResponsesTranscript, type StreamTranscript } from "../test/support/surface-transcripts";
import { expectedText } from "../sim/text";
import { agentAnswer, agentDeltas, type ToolCall } from "../sim/agent";
import { promptTokensOf } from "../sim/wire";
import type { Call } from "./traffic";

export const MODEL = "llama-sim";

export type Outcome =
  | "exact"
  | "partial_with_error"
  | "rejected"
  | "transport_error"
  | "truncated"
  | "duplicated"
  | "mismatch"
  /** A tool call whose name or arguments are not (a prefix of) the true ones: what an agent must never get. */
  | "corrupted_tool_call";

export interface CallResult {
  outcome: Outcome;
  status: number;
  startedAt: number;
  ttftMs?: number;
  totalMs: number;
  tokens: number;
  errorCode?: string;
  attempts?: number;
  /** A whole answer's tokens by the sims' meter (prompt and output), on an exact answer of a chat call: what it should cost. */
  billed?: { prompt: number; completion: number };
}

export interface Target {
  name: string;
  /** Base URL up to and including /v1. */
  baseUrl: string;
  headers: Record<string, string>;
  /** Model name to send (an alias for sluice). */
  model: string;
  /** The API the call speaks (chat completions unless said): sluice's Anthropic Messages and OpenAI Responses routes. */
  surface?: "chat" | "messages" | "responses";
}

/** A call in the target's API: its path, body, and the transcript that reads its stream. */
function requestFor(target: Target, call: Call): { path: string; body: string; transcript: StreamTranscript } {
  const user = call.messages;
  if (target.surface === "messages") {
    const body = {
      model: target.model,
      // Anthropic requires max_tokens: a tool-calling step gets room for its calls.
      max_tokens: call.maxTokens ?? 4_096,
      messages: user,
      tools: call.tools?.map((name) => ({ name, input_schema: { type: "object" } })),
      thinking: call.reasoning ? { type: "enabled", budget_tokens: 1_024 } : undefined,
      stream: true,
    };
    return { path: "messages", body: JSON.stringify(body), transcript: new MessagesTranscript() };
  }
  if (target.surface === "responses") {
    const body = {
      model: target.model,
      input: user,
      max_output_tokens: call.maxTokens,
      tools: call.tools?.map((name) => ({ type: "function", name, parameters: { type: "object" } })),
      reasoning: call.reasoning ? { effort: "low" } : undefined,
      store: false,
      stream: true,
    };
    return { path: "responses", body: JSON.stringify(body), transcript: new ResponsesTranscript() };
  }
  const body = {
    model: target.model,
    messages: user,
    max_tokens: call.maxTokens,
    tools: call.tools?.map((name) => ({ type: "function", function: { name, parameters: { type: "object" } } })),
    reasoning_effort: call.reasoning ? "low" : undefined,
    stream: true,
  };
  return { path: "chat/completions", body: JSON.stringify(body), transcript: new SseTranscript() };
}

// Idle sockets are dropped after 2 s: workerd closes a keep-alive connection idle for 5 s, and a
// request sent on one it is closing ends in ECONNRESET (seen between rounds at 1,000 streams).
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 2048, timeout: 2_000 });

export function callOnce(target: Target, call: Call, extraHeaders: Record<string, string> = {}): Promise<CallResult> {
  const { path, body, transcript } = requestFor(target, call);
  const expected = expectedText({ model: MODEL, messages: call.messages, maxTokens: call.maxTokens });
  const expectedCalls = call.tools ? agentAnswer({ model: MODEL, messages: call.messages, tools: call.tools }).toolCalls : undefined;
  const expectedReasoning = call.reasoning
    ? agentAnswer({ model: MODEL, messages: call.messages, maxTokens: call.maxTokens, reasoning: true }).reasoning.join("")
    : "";
  const url = new URL(`${target.baseUrl}/${path}`);
  const startedAt = performance.now();
  return new Promise((resolve) => {
    let ttftMs: number | undefined;
    let status = 0;
    let attempts: number | undefined;
    let rejectCode: string | undefined;
    let settled = false;
    let transportCause: string | undefined;
    const finish = (transportError: boolean, cause?: Error & { code?: string }) => {
      transportCause ??= cause ? (cause.code ?? cause.message) : undefined;
      if (settled) return;
      settled = true;
      const totalMs = performance.now() - startedAt;
      const { text, done, error: errorEvent } = transcript;
      const base = { status, startedAt, ttftMs, totalMs, tokens: transcript.contentChunks, attempts };
      if (status !== 200 && status !== 0)
        return resolve({ ...base, outcome: "rejected", errorCode: `${status} ${rejectCode ?? ""}`.trim() });
      if (expectedCalls)
        return resolve({
          ...base,
          outcome: toolCallOutcome(transcript, expectedCalls, transportError),
          errorCode: errorEvent?.error?.code,
        });
      if (errorEvent) return resolve({ ...base, outcome: "partial_with_error", errorCode: errorEvent.error?.code });
      // Reasoning is checked like text: whole and in order, or the answer is wrong.
      if (transcript.reasoning !== expectedReasoning && done) return resolve({ ...base, outcome: "mismatch" });
      if (text === expected && done) return resolve({ ...base, outcome: "exact", billed: billedTokens(target, call) });
      if (transportError && !done)
        return resolve({
          ...base,
          outcome: text.length > 0 && expected.startsWith(text) ? "truncated" : "transport_error",
          errorCode: transportCause,
        });
      if (text.length < expected.length && expected.startsWith(text)) return resolve({ ...base, outcome: "truncated" });
      if (text.length > expected.length && text.startsWith(expected.slice(0, 10))) return resolve({ ...base, outcome: "duplicated" });
      return resolve({ ...base, outcome: text === expected ? "exact" : "mismatch" });
    };
    const req = http.request(
      url,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...target.headers, ...extraHeaders },
      },
      (res) => {
        status = res.statusCode ?? 0;
        const a = res.headers["x-sluice-attempts"];
        if (typeof a === "string") attempts = Number(a);
        if (status !== 200) {
          let errorBody = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (errorBody += d));
          res.on("end", () => {
            try {
              rejectCode = (JSON.parse(errorBody) as { error?: { code?: string } }).error?.code;
            } catch {
              /* not JSON */
            }
            finish(false);
          });
          res.on("error", (err) => finish(true, err));
          return;
        }
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          transcript.feed(d);
          if (ttftMs === undefined && transcript.text) ttftMs = performance.now() - startedAt;
        });
        res.on("end", () => finish(false));
        res.on("error", (err) => finish(true, err));
        res.on("aborted", () => finish(true, new Error("aborted")));
      },
    );
    req.on("error", (err) => finish(true, err));
    req.setTimeout(180_000, () => req.destroy());
    req.end(body);
  });
}

/** A fixed target, or one chosen per session index (direct calls spread over the sims). */
export type TargetChoice = Target | ((i: number) => Target);

export function pick(target: TargetChoice, i: number): Target {
  return typeof target === "function" ? target(i) : target;
}

/**
 * `workers` clients, each making its sessions' calls one after another, until `sessions` run out or
 * `untilMs` passes. An agent session's calls run in order, as an agent's would. A client turned
 * away (429/503) waits a little before its next call, as real ones do.
 */
export async function closedLoop(
  target: TargetChoice,
  sessions: Array<{ id: string; calls: Call[] }>,
  workers: number,
  untilMs: number,
  onResult?: (r: CallResult) => void,
  /** Extra headers per call, e.g. an Idempotency-Key. */
  headersFor?: (sessionId: string, callIndex: number) => Record<string, string>,
): Promise<CallResult[]> {
  const results: CallResult[] = [];
  let next = 0;
  const deadline = performance.now() + untilMs;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < deadline && next < sessions.length) {
        const i = next++;
        const session = sessions[i]!;
        for (const [n, call] of session.calls.entries()) {
          const r = await callOnce(pick(target, i), call, headersFor?.(session.id, n));
          results.push(r);
          onResult?.(r);
          if (r.status === 429 || r.status === 503) await new Promise((res) => setTimeout(res, 100));
        }
      }
    }),
  );
  return results;
}

/** A tool-calling answer against the true calls: whole, explicitly partial, or wrong (corrupted, or silently short). */
function toolCallOutcome(t: StreamTranscript, truth: ToolCall[], transportError: boolean): Outcome {
  const got = t.toolCalls;
  const consistent =
    got.length <= truth.length &&
    got.every((c, i) => c !== undefined && truth[i]!.name.startsWith(c.name) && truth[i]!.arguments.startsWith(c.arguments));
  if (!consistent) return "corrupted_tool_call";
  if (t.error) return "partial_with_error";
  const whole = got.length === truth.length && got.every((c, i) => c.name === truth[i]!.name && c.arguments === truth[i]!.arguments);
  if (whole && t.done) return "exact";
  return transportError && got.length === 0 ? "transport_error" : "truncated";
}

/** What one whole answer of `call` costs by the sims' meter (chat calls only: other APIs reach the sim translated). */
function billedTokens(target: Target, call: Call): CallResult["billed"] {
  if (target.surface !== undefined && target.surface !== "chat") return undefined;
  const answer = agentAnswer({
    model: MODEL,
    messages: call.messages,
    maxTokens: call.maxTokens,
    tools: call.tools,
    reasoning: call.reasoning,
  });
  return { prompt: promptTokensOf(call.messages), completion: agentDeltas(answer).length };
}
