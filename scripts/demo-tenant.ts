// The demo tenant of `npm run dev`, which README's examples talk to (its key, the admin token, its
// config over the two sims). The README test (test/e2e/readme.test.ts) sets up the same.

export const ADMIN_TOKEN = "dev-admin-token";
export const DEMO_KEY = "sk-demo-local";

/**
 * Alias "chat" (model llama-sim) over both sims, falling back to "chat-small" (llama-sim-small, on
 * the first sim), then "chat-large" (llama-sim-large, on the second): each fallback has a backend of
 * its own, so a request whose model fails everywhere shows the fallback (README's recipe fails
 * llama-sim with a sim fault and gets chat-small's answer).
 */
export function demoTenantConfig(sims: Array<{ id: string; region: string; url: string }>) {
  const [first, second] = [sims[0]!, sims[1]!];
  // Prices in US dollars per million tokens, as a hosted provider would charge (README, "Spend and budgets").
  const backend = (
    id: string,
    sim: { region: string; url: string },
    model: string,
    price: { inputPerMTok: number; outputPerMTok: number },
  ) => ({
    id,
    region: sim.region,
    url: sim.url,
    model,
    maxConcurrency: 256,
    resume: true,
    price,
  });
  return {
    backends: [
      ...sims.map((s) => backend(s.id, s, "llama-sim", { inputPerMTok: 0.2, outputPerMTok: 0.8 })),
      backend(`${first.id.split("-")[0]}-small`, first, "llama-sim-small", { inputPerMTok: 0.05, outputPerMTok: 0.2 }),
      backend(`${second.id.split("-")[0]}-large`, second, "llama-sim-large", { inputPerMTok: 1, outputPerMTok: 3 }),
    ],
    models: {
      chat: { route: sims.map((s) => s.id), fallbacks: ["chat-small", "chat-large"] },
      "chat-small": { route: [`${first.id.split("-")[0]}-small`] },
      "chat-large": { route: [`${second.id.split("-")[0]}-large`] },
    },
  };
}
