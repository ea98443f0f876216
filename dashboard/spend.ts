// The tenant's spend panel: the last SPEND_DAYS days from the spend API, served and wasted per day
// as a chart, the totals and the wasted share, and where each budget stands.
import uPlot from "uplot";
import type { SpendAnswer } from "./api";
import { usd, wastedShare } from "./health";

/** Days the panel covers. */
export const SPEND_DAYS = 30;

let chart: { tenant: string; plot: uPlot } | null = null;

const $ = (id: string) => document.getElementById(id) as HTMLElement;

export function renderSpend(tenant: string, spend: SpendAnswer | null): void {
  $("spend").hidden = spend === null;
  if (!spend) return;
  $("spend-total").textContent = usd(spend.total.usd);
  $("spend-wasted").textContent = usd(spend.total.wasted_usd);
  $("spend-wasted-share").textContent = wastedShare(spend.total);
  $("spend-wasted-share").className = spend.total.usd > 0 && spend.total.wasted_usd / spend.total.usd > 0.1 ? "warn" : "";
  $("budgets").replaceChildren(
    ...spend.budgets.map((b) => {
      const li = document.createElement("li");
      const amount = (n: number) => (b.unit === "usd" ? usd(n) : `${Math.round(n)} tokens`);
      const whose = b.scope === "key" ? ` (key ${b.key_name ?? "unnamed"})` : "";
      li.textContent = `${b.name}${whose}: ${amount(b.spent)} of ${amount(b.limit)} a ${b.period}, ${amount(b.held)} held by requests in flight`;
      li.className = b.spent >= b.limit ? "bad" : b.spent >= 0.8 * b.limit ? "warn" : "";
      return li;
    }),
  );
  $("unpriced").textContent =
    spend.unpriced_backends.length > 0 ? `No price set (counted as $0): ${spend.unpriced_backends.join(", ")}` : "";

  // Every day of the window, those without spend at 0.
  const byDay = new Map(spend.data.map((d) => [d.day, d]));
  const days: number[] = [];
  const served: number[] = [];
  const wasted: number[] = [];
  for (let t = Date.parse(spend.from); t <= Date.parse(spend.to); t += 86_400_000) {
    const d = byDay.get(new Date(t).toISOString().slice(0, 10));
    days.push(t / 1000);
    served.push(d?.served_usd ?? 0);
    wasted.push(d?.wasted_usd ?? 0);
  }
  if (chart?.tenant !== tenant) {
    $("spend-chart").replaceChildren();
    const plot = new uPlot(
      {
        width: Math.min(720, $("spend-chart").clientWidth || 720),
        height: 200,
        title: `Spend per day, last ${SPEND_DAYS} days (USD)`,
        scales: { x: { time: true } },
        axes: [{}, { size: 70 }],
        series: [
          {},
          { label: "served", stroke: "#393", points: { show: true } },
          { label: "wasted", stroke: "#b24", points: { show: true } },
        ],
      },
      [[], [], []],
      $("spend-chart"),
    );
    chart = { tenant, plot };
  }
  chart.plot.setData([days, served, wasted]);
}
