import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { AlertRule } from "../../config/alerts-schema";
import type { Observation } from "./alert-conditions";
import { AlertTracker, type AlertTransition } from "./alert-tracker";

const rule = (forSeconds = 0): AlertRule => ({ id: "budget", kind: "retry_budget_exhausted", forSeconds });
const seen = (active: boolean, r = rule(), key = "budget"): Observation => ({ key, rule: r, active, figures: { n: 1 }, summary: "s" });
const states = (ts: AlertTransition[]) => ts.map((t) => t.state);

describe("AlertTracker", () => {
  it("fires once when the condition starts, and resolves once when it clears", () => {
    const t = new AlertTracker();
    expect(states(t.evaluate([seen(true)], 0, 1_000))).toEqual(["firing"]);
    expect(states(t.evaluate([seen(true)], 0, 2_000))).toEqual([]);
    const [resolved] = t.evaluate([seen(false)], 0, 3_000);
    expect(resolved).toMatchObject({ state: "resolved", since: 1_000, at: 3_000, rule: "budget" });
    expect(t.evaluate([seen(false)], 0, 4_000)).toEqual([]);
    expect(t.size).toBe(0);
  });

  it("tells a condition that held and cleared between two evaluations as a firing, then its resolution, in order", () => {
    const t = new AlertTracker();
    const blip: Observation = {
      ...seen(true),
      figures: { breaker: "open" },
      cleared: { figures: { breaker: "closed" }, summary: "closed" },
    };
    const told = t.evaluate([blip], 0, 1_000);
    expect(told.map((m) => [m.state, m.figures.breaker])).toEqual([
      ["firing", "open"],
      ["resolved", "closed"],
    ]);
    expect(t.active()).toEqual([]);
    expect(t.evaluate([seen(false)], 0, 2_000)).toEqual([]);
    // With forSeconds to wait, a blip fires nothing and starts no wait.
    const patient = new AlertTracker();
    expect(patient.evaluate([{ ...blip, rule: rule(5) }], 0, 1_000)).toEqual([]);
    expect(patient.evaluate([seen(true, rule(5))], 0, 2_000)).toEqual([]);
    expect(patient.evaluate([seen(true, rule(5))], 0, 6_500)).toEqual([]);
  });

  it("waits forSeconds of the condition holding before it fires; a gap starts the wait over", () => {
    const t = new AlertTracker();
    const r = rule(60);
    expect(t.evaluate([seen(true, r)], 0, 0)).toEqual([]);
    expect(t.active()).toEqual([{ key: "budget", rule: "budget", kind: "retry_budget_exhausted", state: "pending", since: 0 }]);
    expect(t.nextDue(0)).toBe(60_000);
    expect(t.evaluate([seen(false, r)], 0, 30_000)).toEqual([]); // cleared while pending: nothing was told
    expect(t.evaluate([seen(true, r)], 0, 40_000)).toEqual([]);
    expect(t.evaluate([seen(true, r)], 0, 99_999)).toEqual([]);
    expect(states(t.evaluate([seen(true, r)], 0, 100_000))).toEqual(["firing"]);
  });

  it("holds a flapping alert's second firing until the cooldown has passed, and drops it if it cleared by then", () => {
    const t = new AlertTracker();
    const cooldown = 300_000;
    expect(states(t.evaluate([seen(true)], cooldown, 0))).toEqual(["firing"]);
    expect(states(t.evaluate([seen(false)], cooldown, 10_000))).toEqual(["resolved"]);
    expect(t.evaluate([seen(true)], cooldown, 20_000)).toEqual([]);
    expect(t.nextDue(cooldown)).toBe(300_000);
    expect(states(t.evaluate([seen(true)], cooldown, 300_000))).toEqual(["firing"]);
    expect(states(t.evaluate([seen(false)], cooldown, 310_000))).toEqual(["resolved"]);
    expect(t.evaluate([seen(true)], cooldown, 320_000)).toEqual([]);
    expect(t.evaluate([seen(false)], cooldown, 330_000)).toEqual([]);
  });

  it("resolves a firing alert whose rule left the config", () => {
    const t = new AlertTracker();
    t.evaluate([seen(true)], 0, 0);
    expect(t.evaluate([], 0, 5_000)).toMatchObject([
      { state: "resolved", key: "budget", summary: "The rule no longer applies: the config changed." },
    ]);
    expect(t.size).toBe(0);
  });

  it("after a restore, neither repeats a firing nor forgets to resolve it", () => {
    const t = new AlertTracker();
    t.evaluate([seen(true)], 0, 0);
    const restored = AlertTracker.restore(JSON.parse(JSON.stringify(t.toJSON())));
    expect(restored.evaluate([seen(true)], 0, 5_000)).toEqual([]);
    expect(states(restored.evaluate([seen(false)], 0, 10_000))).toEqual(["resolved"]);
  });

  // One alert observed at increasing times: what is sent follows the rules whatever the sequence.
  it("properties: alternates firing/resolved, waits forSeconds, keeps the cooldown, and fires when it may", () => {
    const step = fc.record({ dt: fc.integer({ min: 1, max: 30_000 }), active: fc.boolean() });
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 60 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 120_000 }),
        (steps, forSeconds, cooldown) => {
          const t = new AlertTracker();
          const r = rule(forSeconds);
          let now = 0;
          let activeSince: number | undefined;
          let firing = false;
          let lastFired: number | undefined;
          for (const { dt, active } of steps) {
            now += dt;
            if (active) activeSince ??= now;
            else activeSince = undefined;
            const out = t.evaluate([seen(active, r)], cooldown, now);
            expect(out.length).toBeLessThanOrEqual(1);
            const sent = out[0]?.state;
            if (sent === "firing") {
              expect(firing).toBe(false);
              expect(now - activeSince!).toBeGreaterThanOrEqual(forSeconds * 1000);
              if (lastFired !== undefined) expect(now - lastFired).toBeGreaterThanOrEqual(cooldown);
              firing = true;
              lastFired = now;
            } else if (sent === "resolved") {
              expect(firing).toBe(true);
              expect(active).toBe(false);
              firing = false;
            }
            // A firing alert resolves at the first evaluation that sees the condition clear.
            if (!active) expect(firing).toBe(false);
            // Held long enough, past any cooldown: it is firing.
            const mayFire =
              activeSince !== undefined &&
              now - activeSince >= forSeconds * 1000 &&
              (lastFired === undefined || now - lastFired >= cooldown);
            if (mayFire) expect(firing).toBe(true);
          }
        },
      ),
    );
  });
});
