// The sim's GET /metrics: vLLM's gauges in Prometheus' text format, from the sim's real state, so a
// router that reads a GPU server's load (running, waiting, KV cache in use) can be tested against it.
// KV cache use is modelled as the share of generation slots busy; the prefix cache's queries and
// hits (in tokens) come from its model (prefix-cache.ts).

export function vllmMetrics(running: number, waiting: number, slots: number, cache = { queries: 0, hits: 0 }): string {
  const label = '{model_name="sim"}';
  const metric = (type: string, name: string, help: string, value: number) => [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} ${type}`,
    `${name}${label} ${value}`,
  ];
  return `${[
    ...metric("gauge", "vllm:num_requests_running", "Number of requests in model execution batches.", running),
    ...metric("gauge", "vllm:num_requests_waiting", "Number of requests waiting to be processed.", waiting),
    ...metric(
      "gauge",
      "vllm:kv_cache_usage_perc",
      "KV-cache usage. 1 means 100 percent usage.",
      slots > 0 ? Math.min(1, running / slots) : 0,
    ),
    ...metric("counter", "vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.", cache.queries),
    ...metric("counter", "vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.", cache.hits),
  ].join("\n")}\n`;
}
