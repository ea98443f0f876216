import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { afterTry, FIRST_TRY, MAX_DEFERRAL_MS, MAX_DEFERRALS, type NextTry, type TryEnd, type Tries, tryName } from "./tries";

/** Runs tries against `ends` (then every try fails) until the sequence ends: its names and the last decision. */
function play(attempts: number, ends: TryEnd[]) {
  let t: Tries = FIRST_TRY;
  const names: string[] = [];
  const waits: number[] = [];
  for (let i = 0; ; i++) {
    names.push(tryName("s", t));
    const next: NextTry = afterTry(t, ends[i] ?? { ok: false, deferMs: null }, attempts, () => 0.5);
    if (next.kind === "succeeded" || next.kind === "gave_up") return { names, waits, last: next.kind, t };
    waits.push(next.waitMs);
    t = next.next;
  }
}

const fail: TryEnd = { ok: false, deferMs: null };
const refused = (ms: number): TryEnd => ({ ok: false, deferMs: ms });

describe("a step's tries", () => {
  it("makes its attempts, each after a backoff, and gives up after the last", () => {
    expect(play(3, [fail, fail, fail])).toMatchObject({ names: ["s#1", "s#2", "s#3"], last: "gave_up" });
    expect(play(3, [fail, { ok: true }])).toMatchObject({ names: ["s#1", "s#2"], last: "succeeded" });
  });

  it("retakes an attempt the router refused for now, after its Retry-After, without spending an attempt", () => {
    const run = play(1, [refused(2_000), refused(500), { ok: true }]);
    expect(run).toMatchObject({ names: ["s#1", "s#1.1", "s#1.2"], last: "succeeded" });
    expect(run.waits[0]).toBe(2_000);
    expect(run.waits[1]).toBeGreaterThanOrEqual(500);
  });

  it("counts a refusal as a failed attempt once the step has had MAX_DEFERRALS of them", () => {
    const run = play(
      2,
      Array.from({ length: MAX_DEFERRALS + 5 }, () => refused(10)),
    );
    expect(run.last).toBe("gave_up");
    expect(run.t.deferrals).toBe(MAX_DEFERRALS);
    expect(run.names).toHaveLength(MAX_DEFERRALS + 2);
  });

  it("property: names never repeat, attempts and refusals stay within their limits, and every wait is bounded", () => {
    const end = fc.oneof(
      fc.constant<TryEnd>({ ok: true }),
      fc.constant<TryEnd>(fail),
      fc.integer({ min: 0, max: 10 * MAX_DEFERRAL_MS }).map(refused),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.array(end, { maxLength: 60 }), (attempts, ends) => {
        const run = play(attempts, ends);
        const attemptsMade = new Set(run.names.map((n) => n.split(".")[0])).size;
        return (
          new Set(run.names).size === run.names.length &&
          attemptsMade <= attempts &&
          run.t.deferrals <= MAX_DEFERRALS &&
          run.names.length <= attempts + MAX_DEFERRALS &&
          run.waits.every((w) => w >= 1 && w <= MAX_DEFERRAL_MS)
        );
      }),
    );
  });
});
