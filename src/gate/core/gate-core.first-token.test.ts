// Which attempts tell their first token (AttemptGrant.notifyFirstToken), and what a breaker makes of
// the attempts that do not: they count as successes while they run, and their report tells the
// first token when it ends.
import { describe, expect, it } from "vitest";
import type { TenantConfig } from "../../config/schema";
import type { GateCore } from "./gate-core";
import { admit, failure, leaseOf, request, testBackend, testConfig, testCore } from "./test-host";

const fresh = { deliveredChunks: 0, mustContinue: false };
/** Breakers that open at 5 failures in a row or at half of 5 outcomes: one backend answers first. */
const breakerConfig = (extra: Partial<TenantConfig> = {}) =>
  testConfig({
    limits: { maxConcurrency: 100 },
    breaker: { consecutiveFailures: 5, minRequests: 5, failureRate: 0.5 },
    ...extra,
  });
const breakerOf = (core: GateCore, id: string, now: number) =>
  core.stats("t", { entries: 0, bytes: 0 }, now).backends.find((b) => b.id === id)!;

describe("first-token notices", () => {
  it("are asked of a probe, a hedged model and a backend with adaptiveConcurrency only", () => {
    const grantOf = (config: TenantConfig) => {
      const { core, host } = testCore(config);
      return leaseOf(admit(core, host, request("r"), 0)).grant;
    };
    expect(grantOf(testConfig()).notifyFirstToken).toBeUndefined();
    expect(grantOf(testConfig({ hedging: { enabled: true } })).notifyFirstToken).toBe(true);
    const adaptive = testConfig({ backends: [testBackend("a", "us-east", { adaptiveConcurrency: true }), testBackend("b", "eu-west")] });
    expect(grantOf(adaptive).notifyFirstToken).toBe(true);

    // A half-open breaker's probe must tell: its first token closes the circuit.
    const { core, host } = testCore(testConfig({ breaker: { consecutiveFailures: 1, minRequests: 100, cooldownMs: 1_000 } }));
    const first = leaseOf(admit(core, host, request("first"), 0));
    const retried = core.retry(first.leaseId, failure("a"), fresh, 1);
    expect(retried).toMatchObject({ kind: "attempt", grant: { backend: { id: "b" } } });
    expect(retried.kind === "attempt" && retried.grant.notifyFirstToken).toBeUndefined();
    const probe = leaseOf(admit(core, host, request("probe"), 1_001)).grant;
    expect(probe).toMatchObject({ backend: { id: "a" }, probe: true, notifyFirstToken: true });
  });

  it("fast failures beside attempts that run without telling do not open a healthy backend's circuit", () => {
    const { core, host } = testCore(breakerConfig());
    const leases = Array.from({ length: 20 }, (_, i) => leaseOf(admit(core, host, request(`r${i}`), 0)));
    expect(leases.every((l) => l.grant.backend.id === "a" && l.grant.notifyFirstToken === undefined)).toBe(true);
    // Five of them fail fast (a 503 after 10 ms), five in a row, while the other 15 stream on silently.
    for (let i = 0; i < 5; i++) core.retry(leases[i]!.leaseId, failure("a", { durationMs: 10 + i }), fresh, 10 + i);
    expect(breakerOf(core, "a", 20).breaker).toBe("closed");
    // The 15 end well; their reports tell their first tokens.
    for (let i = 5; i < 20; i++)
      core.settle(
        leases[i]!.leaseId,
        { backendId: "a", outcome: "success", durationMs: 900, ttftMs: 40, chunks: 30 },
        "complete",
        undefined,
        900,
      );
    expect(breakerOf(core, "a", 900)).toMatchObject({ breaker: "closed", window: { successes: 15, failures: 5 } });
  });

  it("a dead backend still opens, once the attempts it has not failed yet are few enough", () => {
    const { core, host } = testCore(breakerConfig());
    const leases = Array.from({ length: 10 }, (_, i) => leaseOf(admit(core, host, request(`r${i}`), 0)));
    const states: string[] = [];
    for (let i = 0; i < 10; i++) {
      core.retry(leases[i]!.leaseId, failure("a", { durationMs: 10 + i }), fresh, 10 + i);
      states.push(breakerOf(core, "a", 10 + i).breaker);
    }
    // The k-th failure weighs k failures against the 10 - k attempts still running: half at the fifth.
    expect(states.indexOf("open")).toBe(4);
  });

  it("counts only attempts that have run as long as the failure took: those just started say nothing yet", () => {
    const { core, host } = testCore(breakerConfig());
    const failing = Array.from({ length: 5 }, (_, i) => leaseOf(admit(core, host, request(`failing${i}`), 100)));
    Array.from({ length: 8 }, (_, i) => leaseOf(admit(core, host, request(`young${i}`), 120)));
    // Five failures of 50 ms each at t = 150..154: the eight attempts started at 120 have run 30 ms.
    for (let i = 0; i < 5; i++) core.retry(failing[i]!.leaseId, failure("a", { durationMs: 50 + i }), fresh, 150 + i);
    expect(breakerOf(core, "a", 155).breaker).toBe("open");
  });

  it("an outage beside long streams still opens: streams from before the run of failures do not hold it back", () => {
    const { core, host } = testCore(breakerConfig());
    // Thirty streams started at 0 run on; from t = 5,000 every new attempt fails after 10 ms.
    Array.from({ length: 30 }, (_, i) => leaseOf(admit(core, host, request(`stream${i}`), 0)));
    const states: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { leaseId } = leaseOf(admit(core, host, request(`new${i}`), 5_000 + 20 * i));
      core.retry(leaseId, failure("a", { durationMs: 10 }), fresh, 5_010 + 20 * i);
      states.push(breakerOf(core, "a", 5_010 + 20 * i).breaker);
    }
    // The failure rate (5 of 35) would not open it; the run of five does.
    expect(states).toEqual(["closed", "closed", "closed", "closed", "open"]);
  });

  it("a silent attempt that started shortly before a run of failures may have answered during it: the run is broken", () => {
    const { core, host } = testCore(
      testConfig({ limits: { maxConcurrency: 100 }, breaker: { consecutiveFailures: 3, minRequests: 1000 } }),
    );
    // A slow start granted at 0 (its first token, if it came within SILENT_FIRST_TOKEN_MS, was not told).
    leaseOf(admit(core, host, request("slow"), 0));
    for (let i = 0; i < 3; i++) {
      const { leaseId } = leaseOf(admit(core, host, request(`failing${i}`), 200 + 100 * i));
      core.retry(leaseId, failure("a", { durationMs: 10 }), fresh, 210 + 100 * i);
    }
    expect(breakerOf(core, "a", 500).breaker).toBe("closed"); // failure, (its answer), two failures
  });

  it("a silent attempt that told a late first token is heard: it no longer holds a run back", () => {
    const { core, host } = testCore(
      testConfig({ limits: { maxConcurrency: 100 }, breaker: { consecutiveFailures: 3, minRequests: 1000 } }),
    );
    // Granted silent at 100, its first token came 300 ms later, so it told it (SILENT_FIRST_TOKEN_MS).
    const slow = leaseOf(admit(core, host, request("slow"), 100));
    core.firstToken(slow.leaseId, 400, 300);
    for (let i = 0; i < 3; i++) {
      const { leaseId } = leaseOf(admit(core, host, request(`failing${i}`), 400 + 100 * i));
      core.retry(leaseId, failure("a", { durationMs: 10 }), fresh, 410 + 100 * i);
    }
    expect(breakerOf(core, "a", 700).breaker).toBe("open"); // its success came before the run
  });

  it("a report tells the first token its attempt did not: the breaker hears a success, then the failure after it", () => {
    const { core, host } = testCore(breakerConfig());
    const { leaseId } = leaseOf(admit(core, host, request("r"), 0));
    // The stream broke after 12 tokens: a success at its first token, a failure at its end.
    core.retry(leaseId, failure("a", { durationMs: 800, ttftMs: 30, chunks: 12, errorCode: "upstream_truncated" }), fresh, 800);
    expect(breakerOf(core, "a", 800).window).toEqual({ successes: 1, failures: 1 });
  });
});
