import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { topologicalOrder, upstreamOf } from "./dag";

describe("workflow step graph", () => {
  it("orders steps after what they need", () => {
    const steps = [
      { id: "sum", needs: ["r1", "r2"] },
      { id: "r1", needs: ["plan"] },
      { id: "r2", needs: ["plan"] },
      { id: "plan", needs: [] },
    ];
    const result = topologicalOrder(steps);
    expect(result).toHaveProperty("order");
    const order = (result as { order: string[] }).order;
    expect(order[0]).toBe("plan");
    expect(order.at(-1)).toBe("sum");
    expect(upstreamOf(steps).get("sum")).toEqual(new Set(["r1", "r2", "plan"]));
  });

  it("finds a cycle and names it", () => {
    const result = topologicalOrder([
      { id: "a", needs: ["c"] },
      { id: "b", needs: ["a"] },
      { id: "c", needs: ["b"] },
    ]);
    expect(result).toEqual({ cycle: ["a", "c", "b", "a"] });
    expect(topologicalOrder([{ id: "self", needs: ["self"] }])).toEqual({ cycle: ["self", "self"] });
  });

  it("property: a graph whose needs point only backwards has an order respecting every need; one edge forwards from the last to the first makes a cycle", () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 2, max: 12 })
          .chain((n) => fc.tuple(fc.constant(n), fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 30 }))),
        ([n, edges]) => {
          const needs: string[][] = Array.from({ length: n }, () => []);
          for (const [a, b] of edges) if (a > b) needs[a]!.push(`s${b}`);
          // A chain, so that the backward edge below always closes a cycle.
          for (let i = 1; i < n; i++) needs[i]!.push(`s${i - 1}`);
          const steps = needs.map((ns, i) => ({ id: `s${i}`, needs: ns }));
          const result = topologicalOrder(steps);
          if (!("order" in result)) return false;
          const at = new Map(result.order.map((id, i) => [id, i]));
          const respects = steps.every((s) => s.needs.every((need) => at.get(need)! < at.get(s.id)!));
          const looped = topologicalOrder([{ ...steps[0]!, needs: [`s${n - 1}`] }, ...steps.slice(1)]);
          return respects && result.order.length === n && "cycle" in looped;
        },
      ),
    );
  });
});
