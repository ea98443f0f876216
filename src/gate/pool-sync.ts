// The gate's side of shared pools: reports its demand to each pool whose fleet backends its tenant
// uses, off the request path, and hands the answer to the core (core/pool-credits.ts). One sync at
// a time; a gate with waiters syncs at most every MIN_GAP_MS, and one that holds or wants credits
// renews them every RENEW_MS (an idle gate, holding none, stays quiet).
import type { GateCore } from "./core/gate-core";
import { RENEW_MS, poolReports } from "./core/pool-credits";
import { type PoolGate, poolGateOf } from "../pool/pool-gate";
import { logError } from "../log";

/**
 * The least time between two syncs of a gate whose requests wait for credits; doubled after each
 * sync that left it short with nothing more (others' attempts must end first), up to MAX_GAP_MS,
 * so a saturated pool is not asked 40 times a second by every gate that waits.
 */
const MIN_GAP_MS = 25;
const MAX_GAP_MS = 100;

export class PoolSync {
  private running = false;
  private again = false;
  private lastStart = 0;
  private gapMs = MIN_GAP_MS;
  private timer: { at: number; handle: ReturnType<typeof setTimeout> } | undefined;

  constructor(
    private readonly pools: DurableObjectNamespace<PoolGate>,
    private readonly core: () => GateCore,
    /** This gate as a holder of credits; null before it knows its tenant. */
    private readonly holder: () => { holder: string; tenant: string } | null,
  ) {}

  /** Sync soon (requests wait). */
  wanted(): void {
    this.schedule(this.lastStart + this.gapMs);
  }

  /** No more syncs (the tenant was deleted). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer.handle);
    this.timer = undefined;
  }

  private schedule(at: number): void {
    if (this.timer && this.timer.at <= at) return;
    if (this.timer) clearTimeout(this.timer.handle);
    const handle = setTimeout(
      () => {
        this.timer = undefined;
        void this.run();
      },
      Math.max(0, at - Date.now()),
    );
    this.timer = { at, handle };
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    let synced = false;
    let stalled = false;
    try {
      const holder = this.holder();
      if (!holder) return;
      const sentAt = Date.now();
      this.lastStart = sentAt;
      const reports = poolReports(this.core(), holder, sentAt);
      synced = reports.length > 0;
      await Promise.all(
        reports.map(async ({ pool, report }) => {
          const reply = await poolGateOf(this.pools, pool)
            .sync(report)
            .catch((err: unknown) => {
              logError(undefined, "pool not reached", err, { pool, holder: holder.holder });
              return null;
            });
          if (this.core().poolAnswered(pool, report, reply, sentAt, Date.now())) stalled = true;
        }),
      );
      this.gapMs = stalled ? Math.min(MAX_GAP_MS, this.gapMs * 2) : MIN_GAP_MS;
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.wanted();
      } else if (synced) this.schedule(Date.now() + RENEW_MS);
    }
  }
}
