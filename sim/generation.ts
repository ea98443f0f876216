// One generation the sim runs (its answer, pace and faults), and the faults a request asks for.
import type http from "node:http";
import type { AgentAnswer, Delta } from "./agent";
import type { SimFault } from "./types";

export interface Generation {
  res: http.ServerResponse;
  answer: AgentAnswer;
  /** The answer's stream, one delta per output token. */
  deltas: Delta[];
  logprobs: boolean;
  model: string;
  id: string;
  created: number;
  next: number;
  nextAt: number;
  intervalMs: number;
  disconnectAfter?: number;
  hangAfter?: number;
  slowAfter?: number;
  slowMs: number;
  includeUsage: boolean;
  compact: boolean;
  promptTokens: number;
  firstTokenMs: number;
  /** Held before its first token until `POST /release` names this hold (see SimFault.hold). */
  hold?: string;
  done: boolean;
}

/**
 * The faults a request asks for: the `x-sim-fault` header (JSON) with the body's `sim_fault` over
 * it; none when they name another sim (`backend`) or another model (`model`).
 */
export function faultOf(header: string | string[] | undefined, body: Record<string, unknown>, simId: string): SimFault {
  let fault: SimFault = {};
  try {
    if (typeof header === "string" && header) fault = JSON.parse(header) as SimFault;
  } catch {
    /* an unparsable header injects nothing */
  }
  if (body.sim_fault && typeof body.sim_fault === "object") fault = { ...fault, ...(body.sim_fault as SimFault) };
  if (fault.backend !== undefined && fault.backend !== simId) return {};
  if (fault.model !== undefined && fault.model !== body.model) return {};
  return fault;
}
