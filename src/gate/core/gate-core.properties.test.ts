// Properties of the gate core over random sequences of admissions, polls, first tokens, retries,
// hedges, settles, cancels, expiries and config changes, played the way Workers and the shell would play them.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LEASE_TTL_MS } from "./lease-timing";
import type { AdmitResult } from "./protocol";
import { admit, request, testBackend, testConfig, testCore } from "./test-host";

const MAX_ATTEMPTS = 2;
const BACKEND_SLOTS = 2;
const configWith = (maxConcurrency: number) =>
  testConfig({
    backends: ["a", "b", "c"].map((id, i) =>
      testBackend(id, i === 1 ? "eu-west" : "us-east", { maxConcurrency: BACKEND_SLOTS, resume: i > 0 }),
    ),
    limits: { maxConcurrency, maxQueue: 4, maxQueueWaitMs: 5_000 },
    retry: { maxAttempts: MAX_ATTEMPTS, budgetMinRetries: 5 },
    breaker: { consecutiveFailures: 3 },
    hedging: { enabled: true, minSamples: 1, minDelayMs: 0, budgetRatio: 1 },
  });

const op = fc.oneof(
  fc.record({
    kind: fc.constant("admit" as const),
    priority: fc.constantFrom("high" as const, "normal" as const, "low" as const, "background" as const),
    key: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
    hash: fc.constantFrom("h", "h", "h2"),
  }),
  fc.record({ kind: fc.constant("pollEnd" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("poll" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("firstToken" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("retry" as const), pick: fc.nat(), chunks: fc.constantFrom(0, 0, 3) }),
  fc.record({ kind: fc.constant("hedge" as const), pick: fc.nat() }),
  fc.record({
    kind: fc.constant("hedgeEnded" as const),
    pick: fc.nat(),
    kept: fc.constantFrom("primary" as const, "hedge" as const),
    dropped: fc.constantFrom("cancelled" as const, "failure" as const),
  }),
  fc.record({
    kind: fc.constant("settle" as const),
    pick: fc.nat(),
    outcome: fc.constantFrom("complete" as const, "failed" as const, "cancelled" as const),
  }),
  fc.record({ kind: fc.constant("cancel" as const), key: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant("advance" as const), ms: fc.constantFrom(10, 500, 3_000, LEASE_TTL_MS + 1) }),
  fc.record({ kind: fc.constant("config" as const), maxConcurrency: fc.integer({ min: 1, max: 4 }) }),
);

describe("gate core properties", () => {
  it("keeps its limits, gives every ticket one verdict, ends every lease once, and frees every slot", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        let limit = 2;
        const { core, host } = testCore(configWith(limit));
        let now = 0;
        let n = 0;
        const verdicts = new Map<string, AdmitResult[]>();
        /** Tickets waiting, and whether their call is open. */
        const waiting = new Map<string, boolean>();
        const leases = new Map<string, { attempts: number; backendOut: boolean }>();
        const ended = new Set<string>();
        const twins = new Map<string, string>(); // twin ticket -> the first request it waits behind

        const received = (ticket: string, result: AdmitResult) => {
          verdicts.set(ticket, [...(verdicts.get(ticket) ?? []), result]);
          waiting.delete(ticket);
          if (result.kind === "lease") granted(result);
        };
        const granted = (result: Extract<AdmitResult, { kind: "lease" }>) => {
          expect(core.leases.size).toBeLessThanOrEqual(limit);
          // Background work holds at most half the slots (the default limits.background).
          expect(core.leases.background).toBeLessThanOrEqual(Math.ceil(limit / 2));
          expect(leases.has(result.leaseId)).toBe(false);
          leases.set(result.leaseId, { attempts: result.grant.attempt, backendOut: true });
        };
        const collect = () => {
          while (host.delivered.length) {
            const d = host.delivered.shift()!;
            received(d.ticket, d.result);
          }
        };
        const check = () => {
          collect();
          for (const id of ["a", "b", "c"]) {
            expect(core.leases.inFlight(id)).toBeLessThanOrEqual(BACKEND_SLOTS);
            // Every slot counted is an attempt's or a hedge's in progress.
            const held = [...core.leases.all()].reduce((n, l) => n + Number(l.backendId === id) + Number(l.hedge?.backendId === id), 0);
            expect(core.leases.inFlight(id), `slots of ${id}`).toBe(held);
          }
          for (const [ticket, got] of verdicts) expect(got.length, `ticket ${ticket}`).toBe(1);
          for (const l of leases.values()) expect(l.attempts).toBeLessThanOrEqual(2 * MAX_ATTEMPTS);
          // Each backend's attempts add up: every one has ended one way, or is in flight.
          for (const b of core.stats("t", { entries: 0, bytes: 0 }, now).backends)
            expect(b.successes + b.failures + b.cancelled + b.abandoned + b.inFlight, `backend ${b.id}`).toBe(b.attempts);
        };
        const active = () => [...leases.keys()].filter((id) => !ended.has(id));
        const pick = <T>(list: T[], i: number) => (list.length ? list[i % list.length] : undefined);
        const settle = (id: string, outcome: "complete" | "failed" | "cancelled") => {
          core.settle(id, null, outcome, undefined, now);
          if (core.leases.get(id) === undefined) ended.add(id);
        };

        for (const o of ops) {
          if (o.kind === "admit") {
            const id = `r${n++}`;
            const record =
              o.key === undefined ? undefined : { key: `idem:${o.key}`, kind: "idempotency" as const, bodyHash: o.hash, shared: true };
            const first = record && core.tickets.group(record.key)?.ticket.request.requestId;
            const result = admit(core, host, request(id, { priority: o.priority, record }), now);
            if (result.kind === "queued") {
              waiting.set(id, true);
              if (first) twins.set(id, first);
            } else received(id, result);
          } else if (o.kind === "pollEnd") {
            const id = pick(
              [...waiting].filter(([, open]) => open).map(([t]) => t),
              o.pick,
            );
            if (id) {
              host.listening.delete(id);
              core.pollEnded(id, now);
              waiting.set(id, false);
            }
          } else if (o.kind === "poll") {
            const id = pick(
              [...waiting].filter(([, open]) => !open).map(([t]) => t),
              o.pick,
            );
            if (id) {
              const result = core.poll(id, now);
              if (result.kind === "queued") {
                host.listening.add(id);
                waiting.set(id, true);
              } else received(id, result);
            }
          } else if (o.kind === "firstToken") {
            const id = pick(active(), o.pick);
            if (id) core.firstToken(id, now);
          } else if (o.kind === "retry") {
            const id = pick(active(), o.pick);
            const lease = id === undefined ? undefined : core.leases.get(id);
            if (id && lease?.backendId) {
              const next = core.retry(
                id,
                { backendId: lease.backendId, outcome: "failure", durationMs: 1, chunks: o.chunks },
                { deliveredChunks: o.chunks, mustContinue: o.chunks > 0 },
                now,
              );
              if (next.kind === "attempt") leases.get(id)!.attempts = next.grant.attempt;
              else if (next.kind === "exhausted") settle(id, "failed");
            }
          } else if (o.kind === "hedge") {
            const id = pick(active(), o.pick);
            const result = id === undefined ? undefined : core.hedge(id, now);
            if (result?.kind === "hedge") expect(result.grant.backend.id).not.toBe(core.leases.get(id!)!.backendId);
          } else if (o.kind === "hedgeEnded") {
            const id = pick(
              active().filter((l) => core.leases.get(l)?.hedge),
              o.pick,
            );
            const lease = id === undefined ? undefined : core.leases.get(id);
            if (id && lease?.hedge && lease.backendId) {
              const droppedId = o.kept === "hedge" ? lease.backendId : lease.hedge.backendId;
              const keptId = o.kept === "hedge" ? lease.hedge.backendId : lease.backendId;
              core.hedgeEnded(id, o.kept, { backendId: droppedId, outcome: o.dropped, durationMs: 1, chunks: 0 }, now);
              expect(core.leases.get(id)).toMatchObject({ backendId: keptId, hedge: undefined });
            }
          } else if (o.kind === "settle") {
            const id = pick(active(), o.pick);
            if (id) settle(id, o.outcome);
          } else if (o.kind === "cancel") {
            const key = `idem:${o.key}`;
            const running = active().find((id) => core.leases.get(id)?.recordKey === key);
            core.cancel({ key, kind: "idempotency", bodyHash: "h" }, now);
            if (running) {
              // Its Worker hears of it at its next call, and settles: a no-op now.
              expect(core.renew(running, now)).toMatchObject({ held: false, ended: { code: "generation_cancelled" } });
              settle(running, "failed");
            }
            expect(core.tickets.group(key)).toBeUndefined();
          } else if (o.kind === "advance") {
            now += o.ms;
            core.wake(now);
            core.reclaimExpired(now);
            for (const id of active()) if (!core.leases.get(id)) ended.add(id);
          } else {
            limit = o.maxConcurrency;
            core.applyConfig(configWith(limit), 0, new Map(), now);
          }
          check();
        }

        // Drain: every Worker settles, every waiting call is answered, time runs out for the rest.
        for (let round = 0; round < 20 && (active().length || waiting.size); round++) {
          for (const id of active()) settle(id, "complete");
          collect();
          for (const [id, open] of waiting) {
            if (open) continue;
            const result = core.poll(id, now);
            if (result.kind === "queued") {
              host.listening.add(id);
              waiting.set(id, true);
            } else received(id, result);
          }
          now += 6_000;
          core.wake(now);
          check();
        }
        expect(active()).toEqual([]);
        expect(waiting.size).toBe(0);
        expect(core.leases.size).toBe(0);
        for (const id of ["a", "b", "c"]) expect(core.leases.inFlight(id)).toBe(0);
        // A twin got its first request's rejection, joined its generation, or was sent to take its place.
        for (const [twin, first] of twins) {
          const [verdict] = verdicts.get(twin)!;
          const [firstVerdict] = verdicts.get(first) ?? [];
          if (verdict!.kind === "reject" && verdict!.code !== "queue_timeout") expect(verdict).toEqual(firstVerdict);
          else expect(["join", "unknown", "reject"]).toContain(verdict!.kind);
        }
      }),
      { numRuns: 1_000, seed: 20261201 },
    );
  });
});
