import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseBackendLoad } from "./backend-load";
import { vllmMetrics } from "../../../sim/metrics";

describe("parseBackendLoad", () => {
  it("reads vLLM's gauges, summed over models, the KV cache at its fullest", () => {
    const text = [
      "# HELP vllm:num_requests_running Number of requests in model execution batches.",
      "# TYPE vllm:num_requests_running gauge",
      'vllm:num_requests_running{engine="0",model_name="llama"} 12.0',
      'vllm:num_requests_running{engine="1",model_name="llama"} 3.0',
      'vllm:num_requests_waiting{model_name="llama"} 4.0',
      'vllm:kv_cache_usage_perc{model_name="llama"} 0.75',
      'vllm:kv_cache_usage_perc{model_name="other model, with } in its label"} 0.5',
      "vllm:prompt_tokens_total 12345",
    ].join("\n");
    expect(parseBackendLoad(text)).toEqual({ running: 15, waiting: 4, kvCacheUsage: 0.75 });
  });

  it("reads SGLang's and TGI's names, and the sim's own exposition", () => {
    expect(parseBackendLoad("sglang:num_running_reqs 7\nsglang:num_queue_reqs 2\nsglang:token_usage 0.4\n")).toEqual({
      running: 7,
      waiting: 2,
      kvCacheUsage: 0.4,
    });
    expect(parseBackendLoad("tgi_batch_current_size 5\ntgi_queue_size 9\n")).toEqual({ running: 5, waiting: 9 });
    expect(parseBackendLoad(vllmMetrics(3, 6, 4, { queries: 900, hits: 600 }))).toEqual({
      running: 3,
      waiting: 6,
      kvCacheUsage: 0.75,
      prefixCache: { queries: 900, hits: 600 },
    });
  });

  it("reports nothing for a server without those gauges, and skips values that are not counts", () => {
    expect(parseBackendLoad("process_cpu_seconds_total 12\n")).toBeUndefined();
    expect(parseBackendLoad("<html>not found</html>")).toBeUndefined();
    expect(parseBackendLoad("vllm:num_requests_waiting NaN\nvllm:num_requests_waiting -1\nvllm:num_requests_running 2")).toEqual({
      running: 2,
      waiting: 0,
    });
  });

  it("property: never throws, and whatever it reports is a count", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2_000 }), (text) => {
        const load = parseBackendLoad(text);
        if (load === undefined) return;
        expect(load.running).toBeGreaterThanOrEqual(0);
        expect(load.waiting).toBeGreaterThanOrEqual(0);
        if (load.kvCacheUsage !== undefined) expect(load.kvCacheUsage).toBeLessThanOrEqual(1);
      }),
    );
    fc.assert(
      fc.property(fc.nat({ max: 1_000 }), fc.nat({ max: 1_000 }), fc.nat({ max: 64 }), (running, waiting, slots) => {
        expect(parseBackendLoad(vllmMetrics(running, waiting, slots))).toMatchObject({ running, waiting });
      }),
    );
  });
});
