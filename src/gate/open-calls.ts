// Admit and poll calls held open for queued requests: each waits up to POLL_MS for its verdict, then
// answers "queued" and the Worker polls again. A newer call for the same ticket (a repeated poll)
// takes over from an older one, which just ends.
import type { AdmitResult } from "./core/protocol";
import { POLL_MS } from "./core/tickets";

interface OpenCall {
  resolve: (result: AdmitResult) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class OpenCalls {
  private readonly calls = new Map<string, OpenCall>();

  /** `ended(ticket)`: a call ran out without a verdict (the core stops counting it as listening). */
  constructor(private readonly ended: (ticketId: string) => void) {}

  /** The core's answer to an admit or poll: a "queued" one is held open for its verdict. */
  hold(result: AdmitResult): AdmitResult | Promise<AdmitResult> {
    if (result.kind !== "queued") return result;
    const id = result.ticket;
    return new Promise((resolve) => {
      const call: OpenCall = {
        resolve,
        timer: setTimeout(() => {
          if (this.calls.get(id) === call) {
            this.calls.delete(id);
            this.ended(id);
          }
          resolve(result);
        }, POLL_MS),
      };
      this.calls.set(id, call);
    });
  }

  /** Hands a verdict to the ticket's open call; false when none is open. */
  deliver(ticketId: string, result: AdmitResult): boolean {
    const call = this.calls.get(ticketId);
    if (!call) return false;
    clearTimeout(call.timer);
    this.calls.delete(ticketId);
    call.resolve(result);
    return true;
  }
}
