// Imports point one way, down the layers of the request path (README, "How a request flows"): a
// module may import from its own layer or a lower one, never from a higher one.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/** Lowest first. Within a layer, folders may import each other's modules. */
const LAYERS = [
  // What every layer may use: the log, the request's trace context, a string hash.
  ["src/log.ts", "src/trace-context.ts", "src/hash.ts"],
  ["src/config"],
  // Workflow definitions, templates and run state: pure.
  ["src/workflows/core"],
  // A shared pool's credit ledger and fair shares: pure; the gate core holds credits from it.
  ["src/pool/core"],
  ["src/gate/core"],
  // The tenant gates, and the pool gates they hold credits from.
  ["src/gate", "src/pool"],
  ["src/stream"],
  // Translation between chat completions and the other APIs clients speak: pure, on stream's seam.
  ["src/surfaces"],
  ["src/dispatch"],
  ["src/observe"],
  ["src/admission"],
  // Durable Objects beside the gate that use it: the tenant's config log.
  ["src/admin"],
  // The jobs queue's message type, which the bindings name.
  ["src/jobs/messages.ts"],
  // The Worker's bindings, the gate's class among them.
  ["src/env.ts"],
  // Serving one chat request: admission, replay or join, dispatch, relay into a sink.
  ["src/serve"],
  // Background work on Cloudflare Queues (files, batches, async generations) and Workflows (runs).
  ["src/jobs", "src/workflows"],
  ["src/api"],
  ["src/index.ts"],
];

function layerOf(file: string): number {
  // The longest matching prefix: src/gate/core is below src/gate.
  let best = -1;
  let bestLength = -1;
  LAYERS.forEach((prefixes, layer) => {
    for (const p of prefixes) {
      if ((file === p || file.startsWith(`${p}/`)) && p.length > bestLength) {
        best = layer;
        bestLength = p.length;
      }
    }
  });
  return best;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.posix.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return p.endsWith(".ts") && !p.endsWith(".test.ts") && !p.endsWith("test-host.ts") ? [p] : [];
  });
}

describe("source layers", () => {
  const files = sources("src");

  it("puts every source file in a layer", () => {
    expect(files.filter((f) => layerOf(f) < 0)).toEqual([]);
  });

  it("has no import that points up a layer", () => {
    const upward: string[] = [];
    for (const file of files) {
      for (const [, spec] of readFileSync(file, "utf8").matchAll(/^(?:import|export)[^"']*from\s+["'](\.[^"']+)["']/gm)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec!));
        const resolved = files.find((f) => f === `${target}.ts` || f === target) ?? `${target}.ts`;
        if (layerOf(resolved) > layerOf(file)) upward.push(`${file} -> ${resolved}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
