// Where the router's CPU goes, by part of the request path: each busy sample of a CPU profile is
// charged to the source file of the nearest bundled JavaScript frame on its stack (a native call,
// such as an RPC's serialisation or a body read, counts for the code that made it), and files are
// grouped into the areas below. Pure: a profile and the bundle's text in, shares out.

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  /** Microseconds before each sample (the inspector's); without them every sample weighs the same. */
  timeDeltas?: number[];
}

/** Areas of the request path, first match wins; a file under none is "other". */
const AREAS: Array<[area: string, test: RegExp]> = [
  ["Hono (routing, middleware, context)", /^node_modules\/hono\//],
  ["zod (validation)", /^node_modules\/zod\//],
  ["gate: the Durable Object's own work", /^src\/(gate|pool)\//],
  ["gate client: RPC calls and their retries", /^src\/admission\/gate-client\.ts$/],
  ["API routes, auth, body parsing", /^src\/(api|config|admission)\//],
  ["relay: upstream attempt, reads, SSE out", /^src\/(dispatch|stream|surfaces)\//],
  ["serve: retries, resume, settle", /^src\/serve\//],
  ["request log, trace context, metrics", /^src\/(log|trace-context|observe\/)/],
  ["other libraries", /^node_modules\//],
];
/** Samples outside any JavaScript: idle is dropped, the rest kept under its own name. */
const NATIVE = new Set(["(program)", "(garbage collector)"]);

/** The bundle's line-to-file map, from the `// path` comments esbuild writes before each module. */
export function bundleFiles(bundle: string): (line: number) => string {
  const starts: Array<[line: number, file: string]> = [];
  bundle.split("\n").forEach((text, i) => {
    const m = /^\/\/ ((?:src|node_modules)\/\S+\.[cm]?[jt]s)$/.exec(text);
    if (m) starts.push([i, m[1]!]);
  });
  return (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = "(bundle prelude)";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]![0] <= line) {
        found = starts[mid]![1];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

export const areaOf = (file: string): string => AREAS.find(([, test]) => test.test(file))?.[0] ?? "other";

/**
 * Busy time per area, largest first: each area's share of all busy time, and its milliseconds. A
 * sample weighs the time until the next one (the last, the one before it).
 */
export function splitProfile(
  profile: CpuProfile,
  bundle: string,
  bundleUrl = "index.mjs",
): Array<{ area: string; share: number; ms: number }> {
  const fileAt = bundleFiles(bundle);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const areaOfNode = new Map<number, string | undefined>();
  const resolve = (id: number): string | undefined => {
    if (areaOfNode.has(id)) return areaOfNode.get(id);
    const f = byId.get(id)!.callFrame;
    let area: string | undefined;
    if (f.url.endsWith(bundleUrl)) area = areaOf(fileAt(f.lineNumber));
    else if (f.functionName === "(idle)") area = undefined;
    else if (NATIVE.has(f.functionName)) area = f.functionName;
    else {
      const up = parent.get(id);
      area = up === undefined ? "native, outside any of our calls" : (resolve(up) ?? "native, outside any of our calls");
    }
    areaOfNode.set(id, area);
    return area;
  };
  const deltas = profile.timeDeltas;
  const weightOf = (i: number) => (deltas ? (deltas[i + 1] ?? deltas[i] ?? 0) : 1);
  const micros = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const area = resolve(id);
    if (area === undefined) return;
    const w = weightOf(i);
    busy += w;
    micros.set(area, (micros.get(area) ?? 0) + w);
  });
  return [...micros]
    .map(([area, us]) => ({ area, share: us / Math.max(1, busy), ms: deltas ? us / 1000 : 0 }))
    .sort((a, b) => b.share - a.share);
}
