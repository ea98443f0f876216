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
  const backend = (id: string, sim: { region: string; url: string }, model: string) => ({
    id,
    region: sim.region,
    url: sim.url,
    model,
    maxConcurrency: 256,
    resume: true,
  });
  return {
    backends: [
      ...sims.map((s) => backend(s.id, s, "llama-sim")),
      backend(`${first.id.split("-")[0]}-small`, first, "llama-sim-small"),
      backend(`${second.id.split("-")[0]}-large`, second, "llama-sim-large"),
    ],
    models: {
      chat: { route: sims.map((s) => s.id), fallbacks: ["chat-small", "chat-large"] },
      "chat-small": { route: [`${first.id.split("-")[0]}-small`] },
      "chat-large": { route: [`${second.id.split("-")[0]}-large`] },
    },
  };
}
