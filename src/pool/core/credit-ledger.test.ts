import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CREDIT_TTL_MS, CreditLedger, type SyncReport } from "./credit-ledger";

const share = { weight: 1, min: 0 };
const report = (
  holder: string,
  tenant: string,
  demand: { inFlight?: number; want?: number; wantBackground?: number; headroom?: number; tokens?: number },
  weight = 1,
): SyncReport => ({
  holder,
  tenant,
  share: { ...share, weight },
  backends: { gpu: { inFlight: 0, want: 0, wantBackground: 0, headroom: 0, tokens: 0, ...demand } },
});

describe("CreditLedger", () => {
  it("grants a lone tenant the whole backend, and takes nothing back while nobody else asks", () => {
    const ledger = new CreditLedger();
    ledger.setBackend("gpu", 16);
    expect(ledger.sync(report("a/0", "a", { want: 40 }), 0).backends.gpu).toEqual({ held: 16, target: 16 });
  });

  it("moves credits to a tenant that starts waiting, as the other's attempts end", () => {
    const ledger = new CreditLedger();
    ledger.setBackend("gpu", 8);
    ledger.sync(report("a/0", "a", { want: 20 }), 0);
    // b asks: its target is half, but a holds all 8 (in flight): b gets none yet.
    expect(ledger.sync(report("b/0", "b", { want: 20 }), 1).backends.gpu).toEqual({ held: 0, target: 4 });
    // a reports 8 in flight: it keeps them (they occupy the backend) but learns its target.
    expect(ledger.sync(report("a/0", "a", { inFlight: 8, want: 20 }), 2).backends.gpu).toEqual({ held: 8, target: 4 });
    // Three of a's attempts ended: a holds 5, and b gets the 3 freed.
    expect(ledger.sync(report("a/0", "a", { inFlight: 5, want: 20 }), 3).backends.gpu).toEqual({ held: 5, target: 4 });
    expect(ledger.sync(report("b/0", "b", { want: 20 }), 4).backends.gpu).toEqual({ held: 3, target: 4 });
    expect(ledger.heldOn("gpu")).toBe(8);
  });

  it("gives background demand only what interactive demand leaves", () => {
    const ledger = new CreditLedger();
    ledger.setBackend("gpu", 10);
    ledger.sync(report("batch/0", "batch", { wantBackground: 50 }), 0);
    ledger.sync(report("chat/0", "chat", { want: 7 }), 0);
    const batch = ledger.sync(report("batch/0", "batch", { wantBackground: 50 }), 1).backends.gpu!;
    expect(batch.target).toBe(3);
  });

  it("gives headroom only from what nobody wants: a tenant keeps spare credits while the pool is idle, not while others wait", () => {
    const ledger = new CreditLedger();
    ledger.setBackend("gpu", 8);
    expect(ledger.sync(report("a/0", "a", { inFlight: 2, want: 2, headroom: 4 }), 0).backends.gpu).toEqual({ held: 6, target: 6 });
    expect(ledger.sync(report("b/0", "b", { want: 6 }), 1).backends.gpu).toEqual({ held: 2, target: 6 });
    expect(ledger.sync(report("a/0", "a", { inFlight: 2, want: 2, headroom: 4 }), 2).backends.gpu).toEqual({ held: 2, target: 2 });
    expect(ledger.sync(report("b/0", "b", { want: 6 }), 3).backends.gpu).toEqual({ held: 6, target: 6 });
  });

  it("takes back a holder's credits when it stops syncing, and forgets a deleted tenant", () => {
    const ledger = new CreditLedger();
    ledger.setBackend("gpu", 4);
    ledger.sync(report("a/0", "a", { want: 4, tokens: 100 }), 0);
    expect(ledger.sync(report("b/0", "b", { want: 4 }), CREDIT_TTL_MS - 1).backends.gpu!.held).toBe(0);
    expect(ledger.sync(report("b/0", "b", { want: 4 }), CREDIT_TTL_MS).backends.gpu!.held).toBe(4);
    expect(ledger.tokensByTenant().get("a")).toBe(100);
    ledger.forgetTenant("a");
    expect(ledger.tokensByTenant().has("a")).toBe(false);
  });

  it("drops a holder that holds and wants nothing (the ledger stays as small as the demand)", () => {
    const ledger = new CreditLedger();
    ledger.setBackend("gpu", 4);
    ledger.sync(report("a/0", "a", { want: 2 }), 0);
    ledger.sync(report("a/0", "a", {}), 1);
    expect(ledger.saved("a/0")).toBeUndefined();
  });

  it("property: honest holders never hold more than the capacity, and converge to their targets", () => {
    const step = fc.record({
      holder: fc.integer({ min: 0, max: 5 }),
      want: fc.integer({ min: 0, max: 30 }),
      wantBackground: fc.integer({ min: 0, max: 30 }),
      use: fc.double({ min: 0, max: 1, noNaN: true }),
      weight: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(step, { maxLength: 80 }), (capacity, steps) => {
        const ledger = new CreditLedger();
        ledger.setBackend("gpu", capacity);
        const held = new Map<number, number>();
        for (const [t, s] of steps.entries()) {
          // An honest gate never has more in flight than it holds.
          const inFlight = Math.floor((held.get(s.holder) ?? 0) * s.use);
          const r = ledger.sync(
            report(
              `t${s.holder % 3}/${s.holder}`,
              `t${s.holder % 3}`,
              { inFlight, want: s.want, wantBackground: s.wantBackground },
              s.weight,
            ),
            t,
          );
          held.set(s.holder, r.backends.gpu!.held);
          expect(ledger.heldOn("gpu")).toBeLessThanOrEqual(capacity);
        }
        // Everyone idle syncs twice: all credits are back.
        for (const h of held.keys()) ledger.sync(report(`t${h % 3}/${h}`, `t${h % 3}`, {}), steps.length);
        expect(ledger.heldOn("gpu")).toBe(0);
      }),
    );
  });

  it("shares a saturated backend in tokens by weight, long generations beside short ones", () => {
    // A discrete run: each tick each running generation makes one token, then every gate syncs and
    // starts what its credits allow. a (weight 3) asks for 400-token answers, b (weight 1) for 10.
    // Counted after a warm-up: a, alone at first, starts 8 long answers it keeps until they end.
    const WARM_UP = 1_000;
    const TICKS = 6_000;
    const ledger = new CreditLedger();
    ledger.setBackend("gpu", 8);
    const tenants = { a: { weight: 3, length: 400 }, b: { weight: 1, length: 10 } };
    const running = { a: [] as number[], b: [] as number[] };
    const tokens = { a: 0, b: 0 };
    for (let tick = 0; tick < TICKS; tick++) {
      for (const name of ["a", "b"] as const) {
        if (tick >= WARM_UP) tokens[name] += running[name].length;
        running[name] = running[name].map((left) => left - 1).filter((left) => left > 0);
      }
      for (const name of ["a", "b"] as const) {
        const r = ledger.sync(report(`${name}/0`, name, { inFlight: running[name].length, want: 100 }, tenants[name].weight), tick);
        while (running[name].length < r.backends.gpu!.held) running[name].push(tenants[name].length);
      }
    }
    // Within 2 points of 3:1.
    expect(Math.abs(tokens.a / (tokens.a + tokens.b) - 0.75)).toBeLessThan(0.02);
    // And the backend stayed busy: at least 95% of its slot-ticks made a token.
    expect(tokens.a + tokens.b).toBeGreaterThanOrEqual(0.95 * 8 * (TICKS - WARM_UP));
  });
});
