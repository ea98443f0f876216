// Shapes of the sim's options and counters, importable from Workers code (no Node imports).

export interface SimOptions {
  id: string;
  host: string;
  port: number;
  /** Tokens per second of each generation. */
  tokensPerSecond: number;
  /** Delay from the start of a generation to its first token. */
  firstTokenMs: number;
  /** Generations running at once; more wait in FIFO order, as on a saturated GPU. */
  maxConcurrency: number;
  /** Share of requests answered with `failStatus` before the first token. */
  failRate: number;
  failStatus: number;
  /** Retry-After (seconds) sent with injected 429/503 answers. */
  retryAfterSec?: number;
  /** Share of streams whose connection is cut mid-way. */
  disconnectRate: number;
  /** Share of requests that get headers and then nothing at all. */
  hangRate: number;
  /** Share of generations slow to start (a long prefill ahead of them, a throttled GPU): their first token takes `slowStartFactor` times firstTokenMs. */
  slowStartRate?: number;
  /** How many times firstTokenMs a slow start takes (10 by default). */
  slowStartFactor?: number;
  /** Seeds the fault dice, so a run is reproducible. */
  seed: number;
  /** Answer `failStatus` to every request whose messages contain this text ("" fails none): one prompt's fault. */
  failMatching?: string;
  /** Hold every new generation under this name (as SimFault.hold does for one); "" holds none. */
  holdNew?: string;
  /** Answer a JSON-mode request (response_format json_object) with plain text, as a model that ignores it does. */
  ignoreJsonMode?: boolean;
  /** Serve vLLM's Prometheus metrics at GET /metrics (true by default); false answers 404 there, as a server without them. */
  metrics?: boolean;
  /**
   * Model a prefix cache of this many blocks (messages): a prompt's cached leading share cuts its
   * first-token delay in proportion (prefix-cache.ts). 0 (the default) models none.
   */
  prefixCacheBlocks?: number;
  /**
   * Prefill at this many prompt tokens a second: the first-token delay is then firstTokenMs plus the
   * prefill of the prompt tokens the prefix cache does not hold (0, the default: firstTokenMs alone,
   * cut by the cached share).
   */
  prefillTokensPerSecond?: number;
}

/** Per-request faults, from the `sim_fault` body field or the `x-sim-fault` header (JSON). */
export interface SimFault {
  /** Apply only on the sim with this id. */
  backend?: string;
  /** Apply only to requests for this model (the backend's model name): one model on a sim fails, another answers. */
  model?: string;
  /** Answer this status before the first token. */
  status?: number;
  retry_after?: number;
  fail_rate?: number;
  /** Cut the connection after this many tokens. */
  disconnect_after?: number;
  /** Send headers, then nothing (after `hang_after` tokens if given). */
  hang?: boolean;
  hang_after?: number;
  ttft_ms?: number;
  /**
   * Hold the generation (it takes a GPU slot) before its first token until `POST /release` with
   * `{"hold": "<this name>"}` (or `{}`, every hold): lets a test keep a slot busy exactly as long as
   * it needs to, whatever the machine's speed.
   */
  hold?: string;
  tps?: number;
  /** From this token on, wait `slow_ms` between tokens. */
  slow_after?: number;
  slow_ms?: number;
  /** After a full first chunk, minimal ones (only `choices[].delta`, `finish_reason`), as some servers send. */
  compact?: boolean;
}

export interface SimStats {
  id: string;
  active: number;
  waiting: number;
  /** Generations held until released (SimFault.hold). */
  held: number;
  peakActive: number;
  /** Most requests open at once: generating, and waiting for a slot as on a saturated GPU. */
  peakOpen: number;
  /** Prompt tokens looked up in the prefix cache, and of them found (with prefixCacheBlocks). */
  prefixQueryTokens: number;
  prefixHitTokens: number;
  requests: number;
  completed: number;
  failedInjected: number;
  disconnectedInjected: number;
  hung: number;
  cancelled: number;
  /** Output tokens generated (every delta written), and prompt tokens of the generations it took (failed-injected ones aside): what a provider would bill. */
  tokens: number;
  promptTokens: number;
  /** The W3C `traceparent` headers of the last 64 chat requests, oldest first. */
  traceparents: string[];
}
