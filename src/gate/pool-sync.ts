// The gate's side of shared pools: reports its demand to each pool whose fleet backends its tenant
// uses, off the request path, and hands the answer to the core (core/pool-credits.ts). One sync at
// a time; a gate with waiters syncs at most every MIN_GAP_MS, and one that holds or wants credits
// renews them every RENEW_MS (an idle gate, holding none, stays quiet).
import type { GateCore } from "./core/gate-core";
import { RENEW_MS, poolReports } from "./core/pool-credits";
import type { PoolGate } from "../pool/pool-gate";
import { logError } from "../log";

/** The least time between two syncs of a gate whose requests wait for credits. */
const MIN_GAP_MS = 25;

export class PoolSync {
  private running = false;
  private again = false;
  private lastStart = 0;
  private timer: { at: number; handle: ReturnType<typeof setTimeout> } | undefined;

  constructor(
    private readonly pools: DurableObjectNamespace<PoolGate>,
    private readonly core: () => GateCore,
    /** This gate as a holder of credits; null before it knows its tenant. */
    private readonly holder: () => { holder: string; tenant: string } | null,
  ) {}

  /** Sync soon (requests wait). */
  wanted(): void {
    this.schedule(this.lastStart + MIN_GAP_MS);
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
    try {
      const holder = this.holder();
      if (!holder) return;
      const sentAt = Date.now();
      this.lastStart = sentAt;
      const reports = poolReports(this.core(), holder, sentAt);
      synced = reports.length > 0;
      await Promise.all(
        reports.map(async ({ pool, report }) => {
          const reply = await this.pools
            .get(this.pools.idFromName(pool))
            .sync(report)
            .catch((err: unknown) => {
              logError(undefined, "pool not reached", err, { pool, holder: holder.holder });
              return null;
            });
          this.core().poolAnswered(pool, report, reply, sentAt, Date.now());
        }),
      );
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.wanted();
      } else if (synced) this.schedule(Date.now() + RENEW_MS);
    }
  }
}
