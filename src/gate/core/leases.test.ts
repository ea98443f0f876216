// Extending a lease: its stored deadline never falls more than STORED_DEADLINE_LAG_MS behind the
// real one, so a restarted gate finds every live lease alive until its next call, and a lease
// extended four times a second is stored once every STORED_DEADLINE_LAG_MS, not each time.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LEASE_RENEW_MS, LEASE_TTL_MS } from "./lease-timing";
import { type Lease, LeaseTable, STORED_DEADLINE_LAG_MS, newLease } from "./leases";

function table() {
  const stored = new Map<string, number>();
  let saves = 0;
  const leases = new LeaseTable({
    saveLease: (lease: Lease) => {
      saves++;
      stored.set(lease.id, lease.deadline);
    },
    dropLease: (id: string) => stored.delete(id),
    setAlarm: () => {},
  });
  return { leases, stored, saves: () => saves };
}

const waiter = { request: { requestId: "r1", promptTokens: 1, priority: "normal" }, plan: [], degradations: [] } as never;

describe("LeaseTable.extend", () => {
  it("stores a lease extended four times a second once every STORED_DEADLINE_LAG_MS", () => {
    const { leases, stored, saves } = table();
    const lease = newLease("l1", waiter, 0, 0);
    leases.add(lease);
    leases.save(lease);
    for (let now = 250; now <= 20_000; now += 250) leases.extend(lease, now);
    expect(lease.deadline).toBe(20_000 + LEASE_TTL_MS);
    expect(saves()).toBe(1 + 20_000 / STORED_DEADLINE_LAG_MS);
    expect(stored.get("l1")).toBe(20_000 + LEASE_TTL_MS);
  });

  it("always stores a renewal LEASE_RENEW_MS after the last", () => {
    const { leases, saves } = table();
    const lease = newLease("l1", waiter, 0, 0);
    leases.add(lease);
    leases.save(lease);
    leases.extend(lease, LEASE_RENEW_MS);
    leases.extend(lease, 2 * LEASE_RENEW_MS);
    expect(saves()).toBe(3);
  });

  it("keeps the stored deadline within the lag of the real one, whatever the calls' spacing", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: LEASE_RENEW_MS }), { maxLength: 200 }), (gaps) => {
        const { leases, stored } = table();
        const lease = newLease("l1", waiter, 0, 0);
        leases.add(lease);
        leases.save(lease);
        let now = 0;
        for (const gap of gaps) {
          now += gap;
          leases.extend(lease, now);
          const behind = lease.deadline - stored.get("l1")!;
          expect(behind).toBeGreaterThanOrEqual(0);
          expect(behind).toBeLessThan(STORED_DEADLINE_LAG_MS);
          // A gate restarted now finds the lease alive past the request's next call.
          expect(stored.get("l1")! - now).toBeGreaterThan(LEASE_RENEW_MS);
        }
      }),
    );
  });

  it("forgets a removed lease's stored deadline: one granted again under its id is stored at once", () => {
    const { leases, stored, saves } = table();
    const lease = newLease("l1", waiter, 0, 0);
    leases.add(lease);
    leases.save(lease);
    leases.remove(lease);
    expect(stored.has("l1")).toBe(false);
    const again = newLease("l1", waiter, 0, 1_000);
    leases.add(again);
    leases.extend(again, 1_000);
    expect(saves()).toBe(2);
  });
});
