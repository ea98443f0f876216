// The gate calls about one lease, claiming it back when the gate does not know it. A gate that
// restarted before writing the lease (rows are written behind), or that reclaimed it from a Worker
// it thought dead, answers "lease_unknown"; the request, alive and relaying, then tells it what the
// lease was (core/lease-recovery.ts) and makes the call again. Only a refused claim ends the request.
import type { AdmitRequest, AttemptGrant, CheckpointAck, LeaseCheck, LeaseClaim, RetryResult } from "../gate/core/protocol";
import { LEASE_UNKNOWN } from "../gate/core/rejections";
import type { GateCalls } from "./dispatch-input";

/** Where the lease's request is: its attempt in progress and whether that attempt answered. */
export class LeaseState {
  backendId: string | null;
  attempts: number;
  answered = false;
  /** The request settled (or is settling): its lease is never claimed back. */
  settled = false;

  constructor(
    readonly leaseId: string,
    readonly admit: AdmitRequest,
    grant: AttemptGrant,
  ) {
    this.backendId = grant.backend.id;
    this.attempts = grant.attempt;
  }

  /** The attempt `grant` started. */
  started(grant: AttemptGrant): void {
    this.backendId = grant.backend.id;
    this.attempts = grant.attempt;
    this.answered = false;
  }

  claim(): LeaseClaim {
    const { leaseId, admit, backendId, attempts, answered } = this;
    return { leaseId, admit, backendId, attempts, answered };
  }
}

const unknown = (r: LeaseCheck | CheckpointAck | RetryResult): boolean =>
  "held" in r ? !r.held && r.ended.code === LEASE_UNKNOWN : r.kind === "exhausted" && r.code === LEASE_UNKNOWN;

/** `gate`'s calls for the lease `state` describes, each made again once after a successful claim. */
export function claimingCalls(gate: GateCalls, state: LeaseState): GateCalls {
  /** The hedge racing the attempt in progress, if any: the attempt in progress once it wins. */
  let hedgeGrant: AttemptGrant | undefined;
  const claimed = async <R extends LeaseCheck | CheckpointAck | RetryResult>(call: () => Promise<R>): Promise<R> => {
    const first = await call();
    if (!unknown(first) || state.settled) return first;
    const adopted = await gate.adopt(state.claim());
    if (!adopted.held) return ("held" in first ? { ...first, ended: adopted.ended } : { kind: "exhausted", ...adopted.ended }) as R;
    return call();
  };
  return {
    renew: (id) => claimed(() => gate.renew(id)),
    firstToken: async (id, ttftMs) => {
      const check = await claimed(() => gate.firstToken(id, ttftMs));
      if (check.held) state.answered = true;
      return check;
    },
    checkpoint: (id, progress) => claimed(() => gate.checkpoint(id, progress)),
    retry: async (id, report, needs) => {
      const next = await claimed(() => gate.retry(id, report, { ...needs, attempt: state.attempts }));
      if (next.kind === "attempt") state.started(next.grant);
      else if (report) state.backendId = null;
      return next;
    },
    settle: (...args) => {
      state.settled = true;
      return gate.settle(...args);
    },
    adopt: (claim) => gate.adopt(claim),
    // A gate that does not know the lease starts no hedge; the race's end is then nothing to it.
    hedge: async (id) => {
      const hedge = await gate.hedge(id);
      hedgeGrant = hedge.kind === "hedge" ? hedge.grant : undefined;
      return hedge;
    },
    hedgeEnded: async (id, kept, dropped) => {
      if (kept === "hedge" && hedgeGrant) state.started(hedgeGrant);
      hedgeGrant = undefined;
      await gate.hedgeEnded(id, kept, dropped);
    },
  };
}
