// What tokens cost on a backend, in US dollars. A listed price is per million tokens; a self-hosted
// GPU's hourly price becomes a price per token through the throughput it was measured at: an hour
// of the GPU at full load generates 3,600 x outputTokensPerSecond tokens, so one token costs
// usd / (3,600 x outputTokensPerSecond) (prefill likewise with inputTokensPerSecond, else free).
// That prices a fully used GPU: idle hours are not in any request's cost.
import type { BackendPrice } from "../../config/schema";

/** Dollars per token (not per million): what the gate multiplies usage by. */
export interface TokenPrice {
  input: number;
  output: number;
  cachedInput: number;
}

/** The tokens of one attempt: from the backend's usage, or estimated where it reported none. */
export interface AttemptUsage {
  /** Prompt tokens, cached ones included. */
  input: number;
  output: number;
  /** Of the prompt tokens, those the backend's prefix cache held. */
  cachedInput: number;
  /** The backend reported no usage: the prompt is sluice's estimate and the output the chunks counted. */
  estimated: boolean;
  /** Of the prompt tokens, the answer so far a continuation read again (the client had it): spend a broken stream cost. */
  resumed?: number;
}

export function tokenPrice(price: BackendPrice | undefined): TokenPrice | null {
  if (!price) return null;
  if (price.gpuHour) {
    const { usd, outputTokensPerSecond, inputTokensPerSecond } = price.gpuHour;
    const input = inputTokensPerSecond === undefined ? 0 : usd / (3600 * inputTokensPerSecond);
    return { input, output: usd / (3600 * outputTokensPerSecond), cachedInput: input };
  }
  const input = (price.inputPerMTok ?? 0) / 1e6;
  return { input, output: (price.outputPerMTok ?? 0) / 1e6, cachedInput: (price.cachedInputPerMTok ?? price.inputPerMTok ?? 0) / 1e6 };
}

/** What `usage` costs at `price`; 0 for an unpriced backend. */
export function costOf(price: TokenPrice | null, usage: AttemptUsage): number {
  if (!price) return 0;
  const cached = Math.min(usage.cachedInput, usage.input);
  return (usage.input - cached) * price.input + cached * price.cachedInput + usage.output * price.output;
}

/** The most a request may cost (a budget's charge at admission): its prompt and max output at the dearest of its backends. */
export function worstCost(prices: ReadonlyArray<TokenPrice | null>, promptTokens: number, maxOutputTokens: number): number {
  let worst = 0;
  for (const p of prices) if (p) worst = Math.max(worst, promptTokens * p.input + maxOutputTokens * p.output);
  return worst;
}
