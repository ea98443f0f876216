// The sim's GET /metrics: vLLM's gauges in Prometheus' text format, from the sim's real state, so a
// router that reads a GPU server's load (running, waiting, KV cache in use) can be tested against it.
// KV cache use is modelled as the share of generation slots busy.

export function vllmMetrics(running: number, waiting: number, slots: number): string {
  const label = '{model_name="sim"}';
  const gauge = (name: string, help: string, value: number) => [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} gauge`,
    `${name}${label} ${value}`,
  ];
  return `${[
    ...gauge("vllm:num_requests_running", "Number of requests in model execution batches.", running),
    ...gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", waiting),
    ...gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", slots > 0 ? Math.min(1, running / slots) : 0),
  ].join("\n")}\n`;
}
