// The step graph of a workflow: a DAG by `needs`. Pure.

export interface GraphStep {
  id: string;
  needs: readonly string[];
}

/** The steps in an order where each comes after what it needs, or a cycle (its ids, first repeated at the end). */
export function topologicalOrder(steps: readonly GraphStep[]): { order: string[] } | { cycle: string[] } {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const state = new Map<string, "visiting" | "done">();
  const order: string[] = [];
  const path: string[] = [];
  const visit = (id: string): string[] | undefined => {
    const seen = state.get(id);
    if (seen === "done") return undefined;
    if (seen === "visiting") return [...path.slice(path.indexOf(id)), id];
    state.set(id, "visiting");
    path.push(id);
    for (const need of byId.get(id)?.needs ?? []) {
      if (!byId.has(need)) continue; // unknown needs are reported apart
      const cycle = visit(need);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(id, "done");
    order.push(id);
    return undefined;
  };
  for (const step of steps) {
    const cycle = visit(step.id);
    if (cycle) return { cycle };
  }
  return { order };
}

/** Every step each step depends on, directly or not (the graph must have no cycle). */
export function upstreamOf(steps: readonly GraphStep[]): Map<string, Set<string>> {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const upstream = new Map<string, Set<string>>();
  const of = (id: string): Set<string> => {
    const known = upstream.get(id);
    if (known) return known;
    const all = new Set<string>();
    upstream.set(id, all);
    for (const need of byId.get(id)?.needs ?? []) {
      if (!byId.has(need)) continue;
      all.add(need);
      for (const u of of(need)) all.add(u);
    }
    return all;
  };
  for (const step of steps) of(step.id);
  return upstream;
}
