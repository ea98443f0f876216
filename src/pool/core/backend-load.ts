// What a GPU server says of its own load, read from its Prometheus metrics (GET /metrics): requests
// running and waiting, how full its KV cache is, and its prefix cache's queries and hits. vLLM's gauges, or SGLang's or TGI's where a
// server has those instead; a server whose text has none of them reports nothing (undefined).

export interface BackendLoad {
  /** Requests in the server's running batch. */
  running: number;
  /** Requests queued inside the server, waiting for the batch. */
  waiting: number;
  /** Share of its KV cache in use (0-1), when it says. */
  kvCacheUsage?: number;
  /** Its prefix cache's counters since it started, in tokens (vLLM's), when it says. */
  prefixCache?: { queries: number; hits: number };
}

/** Metric names by what they mean; each server speaks one set (summed over its series, e.g. per model). */
const RUNNING = ["vllm:num_requests_running", "sglang:num_running_reqs", "tgi_batch_current_size"];
const WAITING = ["vllm:num_requests_waiting", "sglang:num_queue_reqs", "tgi_queue_size"];
const KV_CACHE = ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"];
const PREFIX_QUERIES = "vllm:prefix_cache_queries_total";
const PREFIX_HITS = "vllm:prefix_cache_hits_total";
const SUMMED = [...RUNNING, ...WAITING, PREFIX_QUERIES, PREFIX_HITS];

/** A reading counts for this long after it was taken. */
export const LOAD_FRESH_MS = 10_000;

/** The most of a metrics text read (a server's whole exposition is a few tens of KiB). */
export const MAX_METRICS_BYTES = 512 * 1024;

/** The server's load from its metrics text, or undefined when the text has no running or waiting gauge. */
export function parseBackendLoad(text: string): BackendLoad | undefined {
  const sums = new Map<string, number>();
  const kv: number[] = [];
  for (const line of text.slice(0, MAX_METRICS_BYTES).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    // name{labels} value [timestamp]; label values may hold spaces, so the value follows the last '}'.
    const brace = line.indexOf("{");
    const nameEnd = brace >= 0 ? brace : line.indexOf(" ");
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!SUMMED.includes(name) && !KV_CACHE.includes(name)) continue;
    const rest = brace >= 0 ? line.slice(line.lastIndexOf("}") + 1) : line.slice(nameEnd);
    const value = Number(rest.trim().split(/\s+/)[0]);
    if (!Number.isFinite(value) || value < 0) continue;
    if (KV_CACHE.includes(name)) kv.push(Math.min(1, value));
    else sums.set(name, (sums.get(name) ?? 0) + value);
  }
  const first = (names: string[]) => names.map((n) => sums.get(n)).find((v) => v !== undefined);
  const running = first(RUNNING);
  const waiting = first(WAITING);
  if (running === undefined && waiting === undefined) return undefined;
  const queries = sums.get(PREFIX_QUERIES);
  const hits = sums.get(PREFIX_HITS);
  return {
    running: running ?? 0,
    waiting: waiting ?? 0,
    ...(kv.length > 0 ? { kvCacheUsage: Math.max(...kv) } : {}),
    ...(queries !== undefined && hits !== undefined ? { prefixCache: { queries, hits } } : {}),
  };
}
