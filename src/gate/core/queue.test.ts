import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BoundedPriorityQueue, PRIORITIES, type Priority } from "./queue";

const entry = (id: string, priority: Priority, enqueuedAt = 0) => ({ id, priority, enqueuedAt, value: id });

describe("BoundedPriorityQueue", () => {
  it("takes by priority, FIFO within one", () => {
    const q = new BoundedPriorityQueue<string>(() => 10);
    for (const [id, p] of [
      ["l1", "low"],
      ["n1", "normal"],
      ["h1", "high"],
      ["n2", "normal"],
      ["h2", "high"],
    ] as const)
      q.offer(entry(id, p));
    expect([1, 2, 3, 4, 5].map(() => q.takeFirst()!.id)).toEqual(["h1", "h2", "n1", "n2", "l1"]);
    expect(q.takeFirst()).toBeUndefined();
  });

  it("rejects when full unless a lower priority can be displaced", () => {
    const q = new BoundedPriorityQueue<string>(() => 2);
    q.offer(entry("n1", "normal"));
    q.offer(entry("l1", "low"));
    expect(q.offer(entry("l2", "low"))).toEqual({ accepted: false });
    expect(q.offer(entry("n2", "normal"))).toMatchObject({ accepted: true, displaced: { id: "l1" } });
    expect(q.offer(entry("n3", "normal"))).toEqual({ accepted: false });
    expect(q.offer(entry("h1", "high"))).toMatchObject({ accepted: true, displaced: { id: "n2" } });
    expect(q.size).toBe(2);
  });

  it("skips ineligible entries and removes by id", () => {
    const q = new BoundedPriorityQueue<string>(() => 5);
    q.offer(entry("a", "high"));
    q.offer(entry("b", "high"));
    expect(q.takeFirst((e) => e.id === "b")!.id).toBe("b");
    expect(q.remove("a")!.id).toBe("a");
    expect(q.remove("a")).toBeUndefined();
    expect(q.size).toBe(0);
  });

  it("never exceeds capacity and never loses an entry (property)", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("offer" as const), priority: fc.constantFrom(...PRIORITIES) }),
      fc.record({ kind: fc.constant("take" as const) }),
      fc.record({ kind: fc.constant("remove" as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.array(op, { maxLength: 60 }), (capacity, ops) => {
        const q = new BoundedPriorityQueue<string>(() => capacity);
        const inside = new Set<string>();
        let n = 0;
        for (const o of ops) {
          if (o.kind === "offer") {
            const id = `r${n++}`;
            const r = q.offer(entry(id, o.priority, n));
            if (r.accepted) inside.add(id);
            if (r.accepted && r.displaced) {
              expect(PRIORITIES.indexOf(r.displaced.priority)).toBeGreaterThan(PRIORITIES.indexOf(o.priority));
              inside.delete(r.displaced.id);
            }
          } else if (o.kind === "take") {
            const e = q.takeFirst();
            if (e) {
              // Nothing of higher priority was left behind.
              for (const p of PRIORITIES.slice(0, PRIORITIES.indexOf(e.priority))) expect(q.sizeOf(p)).toBe(0);
              inside.delete(e.id);
            }
          } else {
            const ids = [...inside];
            const id = ids[o.pick % Math.max(1, ids.length)];
            if (id && q.remove(id)) inside.delete(id);
          }
          expect(q.size).toBeLessThanOrEqual(capacity);
          expect(q.size).toBe(inside.size);
        }
      }),
    );
  });
});
