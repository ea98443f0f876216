// The benchmark's Markdown report and its chart (SVG, and PNG through sharp when available).
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { SystemRun as Run } from "./summary";
import { judgeTargets, type RunResults } from "./targets";

interface BenchRun {
  startedAt: string;
  quick: boolean;
  seed: number;
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string; platform: string };
  results: RunResults;
  violations: string[];
}

const COLORS: Record<string, string> = {
  direct: "#888888",
  passthrough: "#1f77b4",
  "js-relay": "#9467bd",
  sluice: "#2ca02c",
  portkey: "#d62728",
};
const fmt = (n: number | undefined) => (n === undefined ? "–" : String(n));
const pct = (n: number) => `${(n * 100).toFixed(2)}%`;

export async function writeReport(run: BenchRun, outDir: string): Promise<string[]> {
  const { overhead = {}, overload = {}, chaos = {} } = run.results;
  const lines: string[] = [];
  lines.push(`# sluice benchmark${run.quick ? " (quick)" : ""}`, "");
  lines.push(
    `Run ${run.startedAt}, seed ${run.seed}, on ${run.machine.cpus} × ${run.machine.cpuModel}, ${run.machine.memoryGb} GiB, Node ${run.machine.node}, ${run.machine.platform}.`,
  );
  lines.push("Everything on one machine: sims, routers on workerd (Miniflare's API), the Portkey gateway, and the load generator.", "");
  lines.push("![latency and backend utilisation](chart.png)", "");

  lines.push(`## sluice against the targets${run.quick ? " (a quick run: smaller loads than the targets name)" : ""}`, "");
  lines.push("| target | measured | verdict |", "|---|---|---|");
  for (const v of judgeTargets(run.results))
    lines.push(`| ${v.target} | ${v.measured} | ${v.met === undefined ? "–" : v.met ? "met" : "missed"} |`);
  lines.push("");

  lines.push("## 1. Overhead: 20-token streams, all sent at once", "");
  lines.push(
    ...figures(
      Object.entries(overhead).flatMap(([level, runs]) => Object.values(runs).map((r) => [level.slice(1), r] as const)),
      "concurrency",
    ),
  );
  lines.push(
    "",
    "Times in ms. TTFT: time to the first content token, as the client sees it. exact: answers with exactly the expected text. js-relay is a bare Worker that reads each upstream event in JavaScript, one read per event, and writes it on (nothing else): what any relay that looks at every token pays on workerd before doing work of its own, where the pass-through's native pipe runs no JavaScript per chunk. Under load sluice reads several events at a time (docs/design-notes.md), which js-relay does not.",
    "",
  );

  lines.push("## 2. Overload: offered load at twice the backends' capacity", "");
  lines.push(
    "| system | calls | served | 429 | 429 latency p50 / p99 | TTFT p50 / p99 | backend utilisation while queued | max queue depth | attempts/call |",
  );
  lines.push("|---|---|---|---|---|---|---|---|---|");
  for (const r of Object.values(overload)) {
    const s = r.summary;
    lines.push(
      `| ${r.system} | ${s.calls} | ${s.outcomes.exact ?? 0} | ${s.outcomes.rejected ?? 0} | ${fmt(r.rejected429Ms?.p50)} / ${fmt(r.rejected429Ms?.p99)} | ${fmt(s.ttftMs.p50)} / ${fmt(s.ttftMs.p99)} | ${r.utilisationWhileQueued === undefined ? "–" : pct(r.utilisationWhileQueued)} | ${fmt(r.maxQueueDepth)} | ${r.attemptsPerCall} |`,
    );
  }
  const slots = overload.sluice?.extra as { gpuSlotsPerBackend?: number; sluiceSlotsPerBackend?: number } | undefined;
  const headroom =
    slots?.gpuSlotsPerBackend !== undefined && slots.sluiceSlotsPerBackend !== undefined
      ? ` Each sim runs ${slots.gpuSlotsPerBackend} generations at once and queues the rest; sluice's tenant gives each backend a \`maxConcurrency\` of ${slots.sluiceSlotsPerBackend}, so the next request already waits inside the server when a generation ends (README, "Tenant config").`
      : "";
  lines.push(
    "",
    `Without a queue of their own, the other systems pass the overload on to the backends, where requests wait inside the GPU server instead.${headroom} Latency of the served calls:`,
    "",
  );
  lines.push(
    ...figures(
      Object.values(overload).map((r) => ["overload", r] as const),
      "scenario",
    ),
    "",
  );

  lines.push(
    "## 3-5. Chaos: 20% of attempts fail before the first token, 5% of streams die mid-way, us-east down for the middle third",
    "",
  );
  lines.push(
    "| system | calls | exact text | partial with error event | rejected | silently truncated | duplicated | other wrong text | corrupted tool calls | transport errors | upstream attempts/call | TTFT p50 | e2e p99 |",
  );
  lines.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of Object.values(chaos)) {
    const s = r.summary;
    const o = s.outcomes;
    const label = r.system === "passthrough" ? "naive pass-through" : r.system;
    lines.push(
      `| ${label} | ${s.calls} | ${o.exact ?? 0} (${pct(s.exactShare)}) | ${o.partial_with_error ?? 0} | ${o.rejected ?? 0} | ${o.truncated ?? 0} | ${o.duplicated ?? 0} | ${o.mismatch ?? 0} | ${o.corrupted_tool_call ?? 0} | ${o.transport_error ?? 0} | ${r.attemptsPerCall} | ${fmt(s.ttftMs.p50)} | ${fmt(s.e2eMs.p99)} |`,
    );
  }
  lines.push(
    "",
    "Latency of the answered calls:",
    "",
    ...figures(
      Object.values(chaos).map((r) => ["chaos", r] as const),
      "scenario",
    ),
  );
  lines.push("", "Errors by status and code:", "");
  for (const r of Object.values(chaos))
    lines.push(
      `- ${r.system}: ${
        Object.entries(r.summary.errors)
          .map(([k, v]) => `${k} × ${v}`)
          .join(", ") || "none"
      }`,
    );
  const priced = Object.values(chaos).filter((r) => r.spend);
  if (priced.length > 0) {
    lines.push(
      "",
      "What the chaos cost, by the sims' meter (every prompt a sim took and every token it generated, at $3 / $15 per million prompt / output tokens): against what the whole answers the clients got would cost, the rest bought nothing whole (failed attempts, cut streams, calls that ended without an answer):",
      "",
      "| system | spent | on whole answers | the rest | share of the spend |",
      "|---|---|---|---|---|",
    );
    for (const r of priced) {
      const s = r.spend!;
      const label = r.system === "passthrough" ? "naive pass-through" : r.system;
      lines.push(
        `| ${label} | $${s.usd.toFixed(2)} | $${s.answersUsd.toFixed(2)} | $${s.restUsd.toFixed(2)} | ${s.usd > 0 ? pct(s.restUsd / s.usd) : "–"} |`,
      );
    }
    const ledger = chaos.sluice?.spend?.ledger;
    const metered = chaos.sluice?.spend?.usd ?? 0;
    if (ledger) {
      const counted = ledger.servedUsd + ledger.wastedUsd;
      const off =
        metered > 0
          ? ` Its total is ${pct(Math.abs(counted - metered) / metered)} off the sims' meter: a stream cut mid-way reports no usage, and what its sim generated that never reached sluice is in no ledger.`
          : "";
      const causes = Object.entries(ledger.wastedByCause)
        .filter(([, v]) => v > 0)
        .map(([k, v]) => `${k} $${v.toFixed(4)}`)
        .join(", ");
      lines.push(
        "",
        `sluice's own ledger for the same run (GET /admin/tenants/chaos/spend): served $${ledger.servedUsd.toFixed(4)}, wasted $${ledger.wastedUsd.toFixed(4)}${causes ? ` (${causes})` : ""}; ${ledger.estimatedAttempts} attempts estimated (no usage: cut or timed out).${off}`,
      );
    }
  }
  const sluiceChaos = chaos.sluice?.extra as
    | { leakedSlots?: number; journal?: { entries: number; bytes: number }; gate?: Record<string, number>; deadLetters?: string[] }
    | undefined;
  lines.push("", `Stuck slots in sluice after the run: ${sluiceChaos?.leakedSlots ?? "–"}.`);
  if (sluiceChaos?.journal)
    lines.push(
      `Every sluice call carried an Idempotency-Key; the tenant's journal (limit 1,000 entries) held ${sluiceChaos.journal.entries} entries, ${Math.round(sluiceChaos.journal.bytes / 1024)} KiB, after the run.`,
    );
  if (sluiceChaos?.gate)
    lines.push(
      `sluice's gate: ${sluiceChaos.gate.attempts} attempts, ${sluiceChaos.gate.retries} retries (${sluiceChaos.gate.continuations} of them mid-stream continuations), ${sluiceChaos.gate.budgetDenied} denied by the retry budget.`,
    );
  if (sluiceChaos?.deadLetters?.length) {
    lines.push(
      "",
      `sluice's dead letters (the last ${sluiceChaos.deadLetters.length}: each attempt as backend and error; + marks a continuation):`,
      "",
    );
    for (const d of sluiceChaos.deadLetters) lines.push(`- ${d}`);
  }
  lines.push("");
  const slowPool = run.results.slowPool;
  if (slowPool) {
    lines.push(
      "## Slow pool: every backend 5x slower for the middle half of the run, 1.5x its GPU slots offered",
      "",
      "| sluice's backends | calls | errors | slow timeouts | TTFT p50 / p99 before | during | after | TTFT back after the recovery |",
      "|---|---|---|---|---|---|---|---|",
    );
    for (const [mode, r] of Object.entries(slowPool)) {
      const t = (p: { p50?: number; p99?: number }) => `${fmt(p.p50)} / ${fmt(p.p99)}`;
      const errors =
        Object.entries(r.summary.errors)
          .map(([k, v]) => `${k} × ${v}`)
          .join(", ") || "none";
      const recovered = r.recoveredAfterMs === undefined ? "never" : `${r.recoveredAfterMs} ms`;
      lines.push(
        `| ${mode === "fixed" ? "fixed maxConcurrency (32 a server of 16 slots)" : "adaptiveConcurrency (up to 32)"} | ${r.summary.calls} | ${errors} | ${r.slowTimeouts} | ${t(r.ttftMs.before)} | ${t(r.ttftMs.slow)} | ${t(r.ttftMs.after)} | ${recovered} |`,
      );
    }
    lines.push("");
  }
  const noisy = run.results.noisyNeighbour;
  if (noisy) {
    const t = (p: { p50?: number; p99?: number }) => `${fmt(p.p50)} / ${fmt(p.p99)}`;
    lines.push(
      "## Noisy neighbour: two tenants on a shared pool of 4 backends (16 GPU slots each, weight 1 each)",
      "",
      "The quiet tenant offers half its share (16 clients), alone, then beside a tenant offering five times its share (160 clients).",
      "",
      "| quiet tenant's TTFT p50 / p99 alone | beside the noisy one | its calls failed | peak open per backend (capacity) | utilisation while anyone waits | noisy tenant's 429s | tokens served (quiet / noisy) |",
      "|---|---|---|---|---|---|---|",
      `| ${t(noisy.ttftMs.alone)} | ${t(noisy.ttftMs.beside)} | ${noisy.aFailed} of ${noisy.aCalls} | ${noisy.peakOpen.join(", ")} (${noisy.capacityPerBackend}) | ${(noisy.utilisationWhileWaiting * 100).toFixed(1)}% | ${noisy.b429} of ${noisy.bCalls} | ${noisy.tokens.a} / ${noisy.tokens.b} |`,
      "",
    );
  }
  if (run.violations.length) lines.push("## Invariants broken", "", ...run.violations.map((v) => `- ${v}`), "");
  else lines.push("Invariants held: no lost, truncated or duplicated text and no leaked slot in sluice's runs.", "");

  const md = path.join(outDir, "report.md");
  writeFileSync(md, lines.join("\n"));
  const svg = chart(overhead, overload, chaos);
  const svgPath = path.join(outDir, "chart.svg");
  writeFileSync(svgPath, svg);
  const files = [md, svgPath];
  try {
    const sharp = (await import("sharp")).default;
    const png = path.join(outDir, "chart.png");
    await sharp(Buffer.from(svg)).png().toFile(png);
    files.push(png);
  } catch {
    /* sharp missing: the SVG is the chart */
  }
  return files;
}

/**
 * The figures every scenario reports, a row per system: TTFT and end-to-end percentiles of the
 * served calls, delivered tokens/s, exact answers, errors by kind, upstream attempts per call and
 * the router's CPU and memory.
 */
function figures(rows: ReadonlyArray<readonly [string, Run]>, firstColumn: string): string[] {
  const lines = [
    `| ${firstColumn} | system | TTFT p50 | TTFT p95 | TTFT p99 | e2e p50 | e2e p95 | e2e p99 | tokens/s | exact | errors | attempts/call | router CPU (cores) | router RSS (MB) |`,
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const [first, r] of rows) {
    const s = r.summary;
    const errorCount = s.calls - (s.outcomes.exact ?? 0);
    const kinds = Object.entries(s.errors)
      .map(([code, n]) => `${code} × ${n}`)
      .join(", ");
    const errors = errorCount > 0 && kinds ? `${errorCount} (${kinds})` : String(errorCount);
    lines.push(
      `| ${first} | ${r.system} | ${fmt(s.ttftMs.p50)} | ${fmt(s.ttftMs.p95)} | ${fmt(s.ttftMs.p99)} | ${fmt(s.e2eMs.p50)} | ${fmt(s.e2eMs.p95)} | ${fmt(s.e2eMs.p99)} | ${s.tokensPerSec} | ${s.outcomes.exact ?? 0}/${s.calls} | ${errors} | ${r.attemptsPerCall} | ${fmt(r.router?.cpuCores)} | ${fmt(r.router?.rssMb)} |`,
    );
  }
  return lines;
}

/** Two panels: TTFT percentiles per system (overhead at the top level, and chaos), utilisation over time. */
function chart(overhead: Record<string, Record<string, Run>>, overload: Record<string, Run>, chaos: Record<string, Run>): string {
  const W = 1100;
  const H = 760;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  const topLevel = Object.keys(overhead).at(-1) ?? "c0";
  const bars = (x0: number, y0: number, w: number, h: number, title: string, runs: Run[]) => {
    parts.push(`<text x="${x0}" y="${y0 - 10}" font-size="14" font-weight="bold">${title}</text>`);
    const values = runs.flatMap((r) => [r.summary.ttftMs.p50 ?? 0, r.summary.ttftMs.p95 ?? 0, r.summary.ttftMs.p99 ?? 0]);
    const max = Math.max(1, ...values);
    const group = w / Math.max(1, runs.length);
    parts.push(`<line x1="${x0}" y1="${y0 + h}" x2="${x0 + w}" y2="${y0 + h}" stroke="#333"/>`);
    runs.forEach((r, i) => {
      ["p50", "p95", "p99"].forEach((q, j) => {
        const v = (r.summary.ttftMs as Record<string, number | undefined>)[q] ?? 0;
        const bh = (v / max) * (h - 20);
        const bx = x0 + i * group + 10 + j * ((group - 20) / 3);
        const bw = (group - 20) / 3 - 4;
        parts.push(
          `<rect x="${bx}" y="${y0 + h - bh}" width="${bw}" height="${bh}" fill="${COLORS[r.system] ?? "#999"}" fill-opacity="${1 - j * 0.3}"/>`,
        );
        parts.push(`<text x="${bx + bw / 2}" y="${y0 + h - bh - 3}" text-anchor="middle" font-size="10">${Math.round(v)}</text>`);
        parts.push(`<text x="${bx + bw / 2}" y="${y0 + h + 12}" text-anchor="middle" font-size="9">${q}</text>`);
      });
      parts.push(
        `<text x="${x0 + i * group + group / 2}" y="${y0 + h + 26}" text-anchor="middle">${r.system === "passthrough" ? "pass-through" : r.system}</text>`,
      );
    });
  };
  bars(40, 40, 500, 260, `TTFT ms, ${topLevel.slice(1)} concurrent streams (overhead)`, Object.values(overhead[topLevel] ?? {}));
  bars(580, 40, 480, 260, "TTFT ms under chaos", Object.values(chaos));

  const lines_ = (x0: number, y0: number, w: number, h: number, title: string, runs: Run[]) => {
    parts.push(`<text x="${x0}" y="${y0 - 10}" font-size="14" font-weight="bold">${title}</text>`);
    parts.push(`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#333"/>`);
    const tMax = Math.max(1, ...runs.flatMap((r) => r.utilisation.map(([t]) => t)));
    for (const frac of [0, 0.5, 1])
      parts.push(`<text x="${x0 - 5}" y="${y0 + h - frac * h + 4}" text-anchor="end" font-size="10">${frac * 100}%</text>`);
    parts.push(`<text x="${x0 + w}" y="${y0 + h + 14}" text-anchor="end" font-size="10">${tMax.toFixed(0)} s</text>`);
    runs.forEach((r, i) => {
      if (!r.utilisation.length) return;
      const pts = r.utilisation.map(([t, u]) => `${(x0 + (t / tMax) * w).toFixed(1)},${(y0 + h - u * h).toFixed(1)}`).join(" ");
      parts.push(`<polyline points="${pts}" fill="none" stroke="${COLORS[r.system] ?? "#999"}" stroke-width="1.5"/>`);
      parts.push(
        `<text x="${x0 + 10 + i * 110}" y="${y0 + h + 30}" fill="${COLORS[r.system] ?? "#999"}">■ ${r.system === "passthrough" ? "pass-through" : r.system}</text>`,
      );
    });
  };
  lines_(60, 400, 460, 260, "Backend utilisation, overload (2x capacity)", Object.values(overload));
  lines_(590, 400, 460, 260, "Backend utilisation, chaos", Object.values(chaos));
  parts.push("</svg>");
  return parts.join("\n");
}
