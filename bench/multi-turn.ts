// Scenario: multi-turn sessions. Conversations of several turns each (every turn resends the
// conversation so far, the answers it got included, after a long system prompt all share) over four
// equally near backends whose sims model a prefix cache: a prompt's first token waits for the
// prefill of the tokens the cache does not hold (2,000 a second, after 20 ms). Run with affinity
// (a conversation's turns go to the backend that served it) and with least-loaded routing
// (`affinity: false`). Reported: prefix-cache hit rate (cached prompt tokens over all, from the
// sims), TTFT p50/p99, and each sim's peak of open generations against sluice's maxConcurrency for it.
import { callOnce, MODEL, type Target } from "./load";
import { expectedText } from "../sim/text";
import { percentiles, type Percentiles } from "./summary";
import { createTenant, type Fleet } from "./stack";
import { configureFleet, NO_FAULTS, progress, settle } from "./measure";

export interface MultiTurnRun {
  turns: number;
  failed: number;
  /** Cached prompt tokens over prompt tokens, at the sims. */
  hitRate: number;
  ttftMs: Percentiles;
  peakOpen: number[];
}

const CAPACITY = 32;
/** A large model's prefill on one GPU: a conversation of 2,500 tokens takes over a second to read from scratch. */
const PREFILL_TOKENS_PER_SECOND = 2_000;
/** Tokens of each answer: a conversation outgrows the shared system prompt within a few turns, as real ones do. */
const ANSWER_TOKENS = 150;
const SYSTEM = `You are a meticulous travel planner. ${"Answer with a day-by-day plan, costs in euros, and one restaurant a day. ".repeat(30)}`;

export async function multiTurnScenario(
  fleet: Fleet,
  sluiceUrl: string,
  options: { conversations: number; turns: number },
): Promise<Record<"affinity" | "leastLoaded", MultiTurnRun>> {
  await configureFleet(fleet, {
    ...NO_FAULTS,
    maxConcurrency: CAPACITY,
    tokensPerSecond: 500,
    firstTokenMs: 20,
    prefillTokensPerSecond: PREFILL_TOKENS_PER_SECOND,
    prefixCacheBlocks: 5_000,
  });
  const out: Partial<Record<"affinity" | "leastLoaded", MultiTurnRun>> = {};
  for (const mode of ["leastLoaded", "affinity"] as const) {
    const route = fleet.specs.map((s) => s.id);
    const key = await createTenant(
      sluiceUrl,
      mode === "affinity" ? "mt-affinity" : "mt-least-loaded",
      fleet,
      {
        limits: { maxConcurrency: 5_000, maxQueue: 5_000, maxQueueWaitMs: 60_000 },
        models: { chat: { route, affinity: mode === "affinity" } },
      },
      // One region: the four are equally near, so routing, not distance, decides among them.
      { maxConcurrency: CAPACITY, region: "us-east" },
    );
    const target: Target = { name: "sluice", baseUrl: `${sluiceUrl}/v1`, headers: { authorization: `Bearer ${key}` }, model: "chat" };
    for (let i = 0; i < fleet.specs.length; i++) await fleet.resetStats(i);
    let count = 0;
    const stop = progress(`multi-turn sessions (${options.conversations} x ${options.turns} turns), ${mode}`, () => count);
    const results = (
      await Promise.all(
        Array.from({ length: options.conversations }, async (_, c) => {
          const messages: Array<{ role: string; content: string }> = [{ role: "system", content: SYSTEM }];
          const done = [];
          for (let t = 0; t < options.turns; t++) {
            messages.push({ role: "user", content: `Trip ${c} (${mode}): and day ${t + 1}?` });
            const r = await callOnce(target, { messages: [...messages], maxTokens: ANSWER_TOKENS });
            count++;
            done.push(r);
            // The client resends the answer it got (the sim's answers are deterministic: this is it).
            messages.push({ role: "assistant", content: expectedText({ model: MODEL, messages, maxTokens: ANSWER_TOKENS }) });
          }
          return done;
        }),
      )
    ).flat();
    stop();
    let queries = 0;
    let hits = 0;
    const peakOpen: number[] = [];
    for (let i = 0; i < fleet.specs.length; i++) {
      const s = await fleet.stats(i);
      queries += s.prefixQueryTokens;
      hits += s.prefixHitTokens;
      peakOpen.push(s.peakOpen);
    }
    out[mode] = {
      turns: results.length,
      failed: results.filter((r) => r.outcome !== "exact").length,
      hitRate: queries === 0 ? 0 : Math.round((hits / queries) * 1000) / 1000,
      ttftMs: percentiles(results.filter((r) => r.ttftMs !== undefined).map((r) => r.ttftMs!)),
      peakOpen,
    };
    await settle(fleet);
  }
  await configureFleet(fleet, { maxConcurrency: 5_000, firstTokenMs: 5, prefixCacheBlocks: 0, prefillTokensPerSecond: 0 });
  return out as Record<"affinity" | "leastLoaded", MultiTurnRun>;
}

export const MULTI_TURN_CAPACITY = CAPACITY;
