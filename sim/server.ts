// The simulated GPU backend: an OpenAI-compatible /v1/chat/completions server with deterministic
// output and injectable faults. One shared ticker paces every stream, so a process holds 1,000+
// concurrent streams without a timer per token.
import { vllmMetrics } from "./metrics";
import { PrefixCache } from "./prefix-cache";
import { json, readBody } from "./http-body";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { agentAnswer, agentContinuation, agentDeltas, type AgentAnswer } from "./agent";
import { mulberry32 } from "./text";
import { answerMessage, chunkOf, promptTokensOf, usageOf } from "./wire";
import { embeddingsAnswer } from "./embeddings";
import type { SimFault, SimOptions, SimStats } from "./types";
import { faultOf, type Generation } from "./generation";

export type { Generation, SimFault, SimOptions, SimStats };

export const DEFAULT_SIM_OPTIONS: SimOptions = {
  id: "sim",
  host: "127.0.0.1",
  port: 9101,
  tokensPerSecond: 50,
  firstTokenMs: 20,
  maxConcurrency: 256,
  failRate: 0,
  failStatus: 503,
  disconnectRate: 0,
  hangRate: 0,
  seed: 1,
};

const TICK_MS = 5;

/** Traceparent headers the sim remembers (SimStats.traceparents). */
const MAX_TRACEPARENTS = 64;

export class SimServer {
  readonly options: SimOptions;
  private readonly server: http.Server;
  private readonly active = new Set<Generation>();
  private readonly waiting: Generation[] = [];
  private ticker: ReturnType<typeof setInterval> | undefined;
  private dice: () => number;
  private counters = SimServer.zeroCounters();
  /** The traceparent headers received, for tests of trace propagation (the last MAX_TRACEPARENTS). */
  private traceparents: string[] = [];
  private readonly prefixCache = new PrefixCache(() => this.options.prefixCacheBlocks ?? 0);

  constructor(options: Partial<SimOptions> = {}) {
    this.options = { ...DEFAULT_SIM_OPTIONS, ...options };
    this.dice = mulberry32(this.options.seed);
    this.server = http.createServer((req, res) => this.route(req, res));
    this.server.keepAliveTimeout = 30_000;
    this.server.maxRequestsPerSocket = 0;
  }

  private static zeroCounters() {
    return {
      peakActive: 0,
      peakOpen: 0,
      requests: 0,
      completed: 0,
      failedInjected: 0,
      disconnectedInjected: 0,
      hung: 0,
      cancelled: 0,
      tokens: 0,
      promptTokens: 0,
    };
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.host, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  stats(): SimStats {
    let held = 0;
    for (const gen of [...this.active, ...this.waiting]) if (gen.hold !== undefined && !gen.done) held++;
    return {
      id: this.options.id,
      active: this.active.size,
      waiting: this.waiting.length,
      held,
      ...this.counters,
      prefixQueryTokens: this.prefixCache.queryTokens,
      prefixHitTokens: this.prefixCache.hitTokens,
      traceparents: [...this.traceparents],
    };
  }

  /** Lets generations held under `hold` (every hold when undefined) go on to their first token. */
  release(hold?: string): number {
    let released = 0;
    const now = performance.now();
    for (const gen of [...this.active, ...this.waiting]) {
      if (gen.hold === undefined || (hold !== undefined && gen.hold !== hold)) continue;
      gen.hold = undefined;
      if (this.active.has(gen)) gen.nextAt = now + gen.firstTokenMs;
      released++;
    }
    this.schedule();
    return released;
  }

  resetStats(): void {
    this.counters = SimServer.zeroCounters();
    this.prefixCache.reset();
    this.traceparents = [];
  }

  /** Changes process-wide knobs at run time (e.g. take a region down and bring it back). */
  configure(patch: Partial<SimOptions>): void {
    Object.assign(this.options, patch);
    if (patch.seed !== undefined) this.dice = mulberry32(patch.seed);
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://sim");
    if (req.method === "GET" && url.pathname === "/stats") return json(res, 200, this.stats());
    if (req.method === "POST" && url.pathname === "/stats/reset") {
      this.resetStats();
      return json(res, 200, this.stats());
    }
    if (req.method === "GET" && url.pathname === "/health") return json(res, 200, { ok: true });
    if (req.method === "GET" && url.pathname === "/metrics") {
      if (this.options.metrics === false) return json(res, 404, { error: { message: "Not Found", type: "not_found" } });
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      const cache = { queries: this.prefixCache.queryTokens, hits: this.prefixCache.hitTokens };
      return void res.end(vllmMetrics(this.active.size, this.waiting.length, this.options.maxConcurrency, cache));
    }
    if (req.method === "GET" && url.pathname === "/v1/models")
      return json(res, 200, { object: "list", data: [{ id: "sim", object: "model", owned_by: this.options.id }] });
    if (req.method === "POST" && url.pathname === "/release") {
      readBody(req)
        .then((body) => json(res, 200, { released: this.release((JSON.parse(body || "{}") as { hold?: string }).hold) }))
        .catch((err: unknown) => json(res, 400, { error: { message: String(err), type: "invalid_request_error" } }));
      return;
    }
    if (
      req.method === "POST" &&
      (url.pathname === "/control" || url.pathname === "/v1/chat/completions" || url.pathname === "/v1/embeddings")
    ) {
      readBody(req)
        .then((body) =>
          url.pathname === "/control"
            ? this.control(body, res)
            : url.pathname === "/v1/embeddings"
              ? this.embeddings(req, body, res)
              : this.chat(req, body, res),
        )
        .catch((err: unknown) => json(res, 400, { error: { message: String(err), type: "invalid_request_error" } }));
      return;
    }
    json(res, 404, { error: { message: `no route ${req.method} ${url.pathname}`, type: "invalid_request_error" } });
  }

  /** An embeddings request: the same faults as a chat request's before its first token, then the vectors. */
  private embeddings(req: http.IncomingMessage, raw: string, res: http.ServerResponse): void {
    this.counters.requests++;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return json(res, 400, { error: { message: "body is not JSON", type: "invalid_request_error" } });
    }
    const fault = faultOf(req.headers["x-sim-fault"], body, this.options.id);
    const failStatus = fault.status ?? (this.dice() < (fault.fail_rate ?? this.options.failRate) ? this.options.failStatus : undefined);
    if (failStatus !== undefined) {
      this.counters.failedInjected++;
      return json(res, failStatus, { error: { message: `sim ${this.options.id}: injected ${failStatus}`, type: "server_error" } });
    }
    const answer = embeddingsAnswer(body);
    json(res, answer.status, answer.body);
  }

  private control(body: string, res: http.ServerResponse): void {
    this.configure(JSON.parse(body || "{}") as Partial<SimOptions>);
    json(res, 200, this.options);
  }

  private chat(req: http.IncomingMessage, raw: string, res: http.ServerResponse): void {
    this.counters.requests++;
    const traceparent = req.headers.traceparent;
    if (typeof traceparent === "string") this.traceparents = [...this.traceparents.slice(-(MAX_TRACEPARENTS - 1)), traceparent];
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return json(res, 400, { error: { message: "body is not JSON", type: "invalid_request_error" } });
    }
    if (!Array.isArray(body.messages) || typeof body.model !== "string") {
      return json(res, 400, { error: { message: "model and messages are required", type: "invalid_request_error" } });
    }
    const fault = faultOf(req.headers["x-sim-fault"], body, this.options.id);
    const o = this.options;

    const matched = o.failMatching ? JSON.stringify(body.messages).includes(o.failMatching) : false;
    const failStatus = fault.status ?? (matched || this.dice() < (fault.fail_rate ?? o.failRate) ? o.failStatus : undefined);
    if (failStatus !== undefined) {
      this.counters.failedInjected++;
      const retryAfter = fault.retry_after ?? o.retryAfterSec;
      res.setHeader("content-type", "application/json");
      if (retryAfter !== undefined && (failStatus === 429 || failStatus === 503)) res.setHeader("retry-after", String(retryAfter));
      res.writeHead(failStatus);
      res.end(JSON.stringify({ error: { message: `sim ${o.id}: injected ${failStatus}`, type: "server_error", code: failStatus } }));
      return;
    }

    const messages = body.messages as Array<{ role?: string; content?: unknown }>;
    const seed = typeof body.seed === "number" ? body.seed : undefined;
    const maxTokens = (body.max_completion_tokens ?? body.max_tokens) as number | undefined;
    const tools = Array.isArray(body.tools)
      ? body.tools.map((t: { function?: { name?: unknown } }) => t?.function?.name).filter((n): n is string => typeof n === "string")
      : undefined;
    const last = messages[messages.length - 1];
    const continuing = body.continue_final_message === true && last?.role === "assistant";
    const prefix = continuing ? String(last.content ?? "") : "";
    const original = continuing ? messages.slice(0, -1) : messages;
    // Asked for as OpenAI does, or as vLLM's reasoning models take it (what sluice maps Anthropic's `thinking` onto).
    const thinking = (body.chat_template_kwargs as { enable_thinking?: unknown } | undefined)?.enable_thinking === true;
    const reasoning = typeof body.reasoning_effort === "string" || thinking;
    const jsonMode = (body.response_format as { type?: unknown } | undefined)?.type === "json_object" && !o.ignoreJsonMode;
    const answer = continuing
      ? agentContinuation({ model: body.model, messages: original, seed, tools, reasoning, json: jsonMode }, prefix, maxTokens)
      : agentAnswer({ model: body.model, messages: original, seed, maxTokens, tools, reasoning, json: jsonMode });
    const deltas = agentDeltas(answer);

    const stream = body.stream === true;
    const hang = fault.hang === true || this.dice() < o.hangRate;
    const disconnect =
      fault.disconnect_after ??
      (stream && this.dice() < o.disconnectRate ? Math.floor(this.dice() * Math.max(1, deltas.length - 1)) + 1 : undefined);
    const tps = fault.tps ?? o.tokensPerSecond;
    // Like a tokenizer: the original messages, plus the prefix's tokens when continuing (one per word).
    const promptTokens = promptTokensOf(original, prefix);
    this.counters.promptTokens += promptTokens;
    const gen: Generation = {
      res,
      answer,
      deltas,
      logprobs: body.logprobs === true,
      model: body.model,
      id: `chatcmpl-sim-${o.id}-${this.counters.requests}`,
      created: Math.floor(Date.now() / 1000),
      next: 0,
      nextAt: 0,
      intervalMs: 1000 / Math.max(0.001, tps),
      disconnectAfter: disconnect,
      hangAfter: hang ? (fault.hang_after ?? 0) : undefined,
      slowAfter: fault.slow_after,
      slowMs: fault.slow_ms ?? 0,
      includeUsage: (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true,
      compact: fault.compact === true,
      promptTokens,
      firstTokenMs: fault.ttft_ms ?? this.firstTokenDelay(original, answer, promptTokens),
      hold: typeof fault.hold === "string" ? fault.hold : o.holdNew || undefined,
      done: false,
    };
    res.on("close", () => {
      if (gen.done) return;
      gen.done = true;
      this.counters.cancelled++;
      this.finish(gen);
    });
    if (stream) {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      res.flushHeaders();
    }
    this.waiting.push(gen);
    this.schedule();
  }

  /**
   * Time to the first token: firstTokenMs cut by the share of the prompt the prefix cache holds, or,
   * with prefillTokensPerSecond, firstTokenMs plus the prefill of the prompt tokens it does not hold;
   * times slowStartFactor for a slow start (slowStartRate of them).
   */
  private firstTokenDelay(
    original: ReadonlyArray<{ role?: string; content?: unknown }>,
    answer: AgentAnswer,
    promptTokens: number,
  ): number {
    const o = this.options;
    const cached = o.prefixCacheBlocks ? this.prefixCache.serve(original, answer.content.join("")) : 0;
    const ms = o.prefillTokensPerSecond
      ? o.firstTokenMs + (promptTokens * (1 - cached) * 1000) / o.prefillTokensPerSecond
      : o.firstTokenMs * (1 - cached);
    const slow = (o.slowStartRate ?? 0) > 0 && this.dice() < o.slowStartRate! ? (o.slowStartFactor ?? 10) : 1;
    return Math.round(ms * slow);
  }

  /** Starts waiting generations while there is capacity, and keeps the ticker running while needed. */
  private schedule(): void {
    const now = performance.now();
    this.counters.peakOpen = Math.max(this.counters.peakOpen, this.active.size + this.waiting.length);
    while (this.active.size < this.options.maxConcurrency && this.waiting.length) {
      const gen = this.waiting.shift()!;
      if (gen.done) continue;
      gen.nextAt = gen.hold === undefined ? now + gen.firstTokenMs : Number.POSITIVE_INFINITY;
      this.active.add(gen);
    }
    this.counters.peakActive = Math.max(this.counters.peakActive, this.active.size);
    if (this.active.size && !this.ticker) this.ticker = setInterval(() => this.tick(), TICK_MS);
    if (!this.active.size && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  private tick(): void {
    const now = performance.now();
    for (const gen of this.active) {
      while (!gen.done && gen.nextAt <= now) this.step(gen, now);
    }
    this.schedule();
  }

  /** Emits the next token of `gen` (or its end, or its injected fault). */
  private step(gen: Generation, now: number): void {
    const { res, deltas } = gen;
    const streaming = res.headersSent;
    if (gen.hangAfter !== undefined && gen.next >= gen.hangAfter) {
      // Hang: stop pacing this generation; it ends only when the client gives up.
      if (gen.nextAt !== Number.POSITIVE_INFINITY) this.counters.hung++;
      gen.nextAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (gen.disconnectAfter !== undefined && gen.next >= gen.disconnectAfter) {
      gen.done = true;
      this.counters.disconnectedInjected++;
      // End the connection mid-body once the tokens written so far are flushed.
      res.socket?.end();
      this.finish(gen);
      return;
    }
    if (!streaming) {
      // Non-streaming: the whole answer at once when the generation would have finished.
      if (gen.next < deltas.length) {
        gen.next = deltas.length;
        gen.nextAt = now + gen.intervalMs * deltas.length;
        return;
      }
      gen.done = true;
      this.counters.tokens += deltas.length;
      this.counters.completed++;
      json(res, 200, answerMessage(gen, usageOf(gen)));
      this.finish(gen);
      return;
    }
    if (gen.next === 0) this.write(gen, chunkOf(gen, { role: "assistant", content: "" }, null));
    if (gen.next < deltas.length) {
      this.write(gen, chunkOf(gen, deltas[gen.next]!, null, gen.next));
      gen.next++;
      this.counters.tokens++;
      const slow = gen.slowAfter !== undefined && gen.next >= gen.slowAfter ? gen.slowMs : 0;
      gen.nextAt += gen.intervalMs + slow;
      if (gen.next < deltas.length) return;
    }
    this.write(gen, chunkOf(gen, {}, gen.answer.finishReason));
    if (gen.includeUsage)
      this.write(gen, {
        id: gen.id,
        object: "chat.completion.chunk",
        created: gen.created,
        model: gen.model,
        choices: [],
        usage: usageOf(gen),
      });
    res.end("data: [DONE]\n\n");
    gen.done = true;
    this.counters.completed++;
    this.finish(gen);
  }

  private write(gen: Generation, chunk: unknown): void {
    gen.res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  }

  private finish(gen: Generation): void {
    this.active.delete(gen);
    const i = this.waiting.indexOf(gen);
    if (i >= 0) this.waiting.splice(i, 1);
  }
}
