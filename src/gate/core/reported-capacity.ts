// What a GPU server's own queue says of its capacity. A server that reports requests waiting inside
// it runs no more than it reports running: more sent to it only queue there, behind a batch sluice
// cannot see, while other backends may have room. So a reading with a queue caps the backend at this
// gate's share of what the server runs; readings without one raise the cap again by a quarter each
// (at least one), until it reaches the backend's maxConcurrency and is lifted. The cap follows a
// server whose capacity shrank (a smaller batch, a throttled GPU, another user) within one reading,
// and gives the room back gradually, so a stale reading cannot flood the server at once.
import type { BackendLoad } from "../../pool/core/backend-load";

/**
 * The cap after a reading: `load` as the server reported it, `inFlight` this gate's attempts on it
 * when it was read, `previous` the cap before (undefined: none), `max` the backend's own limit.
 * Undefined: no cap.
 */
export function reportedCapacity(
  load: Pick<BackendLoad, "running" | "waiting">,
  inFlight: number,
  previous: number | undefined,
  max: number,
): number | undefined {
  if (load.waiting > 0) {
    // This gate's share of the requests the server holds (others may use it too), of what it runs.
    const held = load.running + load.waiting;
    const share = Math.min(1, inFlight / held);
    return Math.min(max, Math.max(1, Math.floor(load.running * share)));
  }
  if (previous === undefined) return undefined;
  const raised = previous + Math.max(1, Math.ceil(previous / 4));
  return raised >= max ? undefined : raised;
}
