// `npm run sim -- --help`: run one simulated GPU backend.
import { parseArgs } from "node:util";
import { DEFAULT_SIM_OPTIONS, SimServer, type SimOptions } from "./server";

const HELP = `sluice sim: a simulated OpenAI-compatible GPU backend (deterministic output, injectable faults)

Usage: npm run sim -- [options]

  --id <name>               name in /stats and for targeted faults      (default ${DEFAULT_SIM_OPTIONS.id})
  --host <addr>             address to listen on                         (default ${DEFAULT_SIM_OPTIONS.host})
  --port <n>                port, 0 for any free one                     (default ${DEFAULT_SIM_OPTIONS.port})
  --tps <n>                 tokens per second per generation             (default ${DEFAULT_SIM_OPTIONS.tokensPerSecond})
  --ttft-ms <n>             first-token latency                          (default ${DEFAULT_SIM_OPTIONS.firstTokenMs})
  --max-concurrency <n>     generations at once; more wait (saturated GPU) (default ${DEFAULT_SIM_OPTIONS.maxConcurrency})
  --fail-rate <0..1>        share answered with --fail-status before the first token (default 0)
  --fail-status <code>      500, 503 or 429                              (default ${DEFAULT_SIM_OPTIONS.failStatus})
  --retry-after <s>         Retry-After sent with injected 429/503
  --disconnect-rate <0..1>  share of streams cut mid-way                 (default 0)
  --hang-rate <0..1>        share that send headers and then nothing     (default 0)
  --seed <n>                seed of the fault dice                       (default ${DEFAULT_SIM_OPTIONS.seed})
  -h, --help                this text

Per request, a "sim_fault" body field or an "x-sim-fault" header (JSON) injects faults:
  {"status":503,"retry_after":2} {"fail_rate":0.2} {"disconnect_after":5} {"hang":true,"hang_after":3}
  {"ttft_ms":500} {"tps":10} {"slow_after":4,"slow_ms":2000} {"hold":"<name>"} (no first token until
  POST /release {"hold":"<name>"}); add "backend":"<id>" to hit one sim only. Through sluice, use the
  body field: sluice passes unknown body fields on to the backend, but not the client's headers.

Endpoints: POST /v1/chat/completions, GET /v1/models, GET /stats, POST /stats/reset,
           POST /control (JSON patch of the options above, camelCase: {"failRate":1}),
           POST /release ({"hold":"<name>"}, or {} for every held generation), GET /health`;

const { values } = parseArgs({
  options: {
    id: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
    tps: { type: "string" },
    "ttft-ms": { type: "string" },
    "max-concurrency": { type: "string" },
    "fail-rate": { type: "string" },
    "fail-status": { type: "string" },
    "retry-after": { type: "string" },
    "disconnect-rate": { type: "string" },
    "hang-rate": { type: "string" },
    seed: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});

if (values.help) {
  console.log(HELP);
  process.exit(0);
}

function num(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    console.error(`--${name} must be a number from ${min} to ${max}; got "${value}". See --help.`);
    process.exit(2);
  }
  return n;
}

const options: Partial<SimOptions> = Object.fromEntries(
  Object.entries({
    id: values.id,
    host: values.host,
    port: num("port", values.port, 0, 65535),
    tokensPerSecond: num("tps", values.tps, 0.001, 1_000_000),
    firstTokenMs: num("ttft-ms", values["ttft-ms"], 0, 600_000),
    maxConcurrency: num("max-concurrency", values["max-concurrency"], 1, 1_000_000),
    failRate: num("fail-rate", values["fail-rate"], 0, 1),
    failStatus: num("fail-status", values["fail-status"], 400, 599),
    retryAfterSec: num("retry-after", values["retry-after"], 0, 3600),
    disconnectRate: num("disconnect-rate", values["disconnect-rate"], 0, 1),
    hangRate: num("hang-rate", values["hang-rate"], 0, 1),
    seed: num("seed", values.seed, 0, 2 ** 32),
  }).filter(([, v]) => v !== undefined),
);

const sim = new SimServer(options);
const port = await sim.listen();
console.log(
  `sim ${sim.options.id} listening on http://${sim.options.host}:${port}/v1 (${sim.options.tokensPerSecond} tok/s, ttft ${sim.options.firstTokenMs} ms, max ${sim.options.maxConcurrency} concurrent)`,
);
const stop = () => sim.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
