// Session and prefix affinity against real sims: a conversation's turns go to the backend that
// served it before (where its prefix is in cache) while that backend has room, to the next in its
// ranking when it is full, and back once it has room again; conversations spread over backends.
import { beforeEach, describe, expect, it } from "vitest";
import { captureRequestLines, chat, createTenant, eventually, release, resetSims, simConfig, simStats } from "./helpers";

beforeEach(resetSims);

const WAIT_MS = 60_000;
const SYSTEM = { role: "system", content: "You are a travel planner. Answer briefly." };

/** Turn `n` of conversation `topic`: the whole conversation so far, resent, as clients do. */
const turn = (topic: string, n: number) => [
  SYSTEM,
  { role: "user", content: `Plan a trip to ${topic}.` },
  ...Array.from({ length: n }, (_, i) => [
    { role: "assistant", content: `Day ${i + 1} in ${topic}.` },
    { role: "user", content: `And day ${i + 2}?` },
  ]).flat(),
];

/** Three backends of one region, each taking 2 at once: equally near, so affinity orders them. */
async function tenant() {
  const config = simConfig(["a", "b", "c"]);
  return createTenant({
    ...config,
    backends: config.backends.map((b) => ({ ...b, region: "us-east", maxConcurrency: 2 })),
    models: { chat: { route: ["a", "b", "c"] } },
    limits: { maxConcurrency: 16, maxQueue: 16, maxQueueWaitMs: WAIT_MS },
  });
}

const ask = async (key: string, messages: unknown[], extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
  const res = await chat(key, { model: "chat", messages, max_tokens: 4, ...extra }, headers);
  await res.arrayBuffer();
  expect(res.status).toBe(200);
  return res.headers.get("x-sluice-backend")!;
};

describe("affinity", () => {
  it("keeps a conversation on one backend while it has room, moves it when full, and brings it back", {
    timeout: 3 * WAIT_MS,
  }, async () => {
    const { key } = await tenant();
    const lines = captureRequestLines();
    const home = await ask(key, turn("Lisbon", 0));
    // The log line says why it went there.
    await eventually(async () => lines.length === 1, WAIT_MS);
    expect(lines[0]!.attempts.map((a) => [a.backend, a.route])).toEqual([[home, "affinity"]]);
    for (let n = 1; n <= 3; n++) expect(await ask(key, turn("Lisbon", n))).toBe(home);
    const hold = (n: number) => chat(key, { model: "chat", messages: turn("Lisbon", n), max_tokens: 4, sim_fault: { hold: "aff" } });
    // One turn held there: the next still goes home, though the other backends are idle (not fewest in flight).
    const held = [hold(4)];
    await eventually(async () => (await simStats(home as "a")).held === 1, WAIT_MS);
    expect(await ask(key, turn("Lisbon", 5))).toBe(home);
    // Two held fill it (2 at once): the next turn goes to the next in its ranking.
    held.push(hold(6));
    await eventually(async () => (await simStats(home as "a")).held === 2, WAIT_MS);
    const away = await ask(key, turn("Lisbon", 7));
    expect(away).not.toBe(home);
    let ended = false;
    const backendOf = async (pending: Promise<Response>) => {
      const res = await pending;
      await res.arrayBuffer();
      return res.headers.get("x-sluice-backend");
    };
    const all = Promise.all(held.map(backendOf)).finally(() => (ended = true));
    await eventually(async () => {
      await release("aff", home as "a");
      return ended;
    }, WAIT_MS);
    expect(await all).toEqual([home, home]);
    // Room again: it comes home.
    expect(await ask(key, turn("Lisbon", 8))).toBe(home);
  });

  it("spreads conversations over the backends, and follows a session the client names", { timeout: 3 * WAIT_MS }, async () => {
    const { key } = await tenant();
    const homes = new Set<string>();
    for (const topic of ["Porto", "Seville", "Bruges", "Ghent", "Riga", "Tallinn", "Krakow", "Graz", "Bergen", "Turku"])
      homes.add(await ask(key, turn(topic, 0)));
    expect(homes.size).toBeGreaterThan(1);
    // A named session: turns of unrelated content stay together.
    const session = await ask(key, turn("Oslo", 0), {}, { "x-session-id": "trip-42" });
    expect(await ask(key, turn("Nice", 2), {}, { "x-session-id": "trip-42" })).toBe(session);
    const user = await ask(key, turn("Split", 0), { user: "traveller-7" });
    expect(await ask(key, turn("Bled", 1), { user: "traveller-7" })).toBe(user);
  });
});
