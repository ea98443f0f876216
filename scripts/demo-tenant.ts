// The demo tenant of `npm run dev`, which README's examples talk to (its key, the admin token, its
// config over the two sims). The README test (test/e2e/readme.test.ts) sets up the same.

export const ADMIN_TOKEN = "dev-admin-token";
export const DEMO_KEY = "sk-demo-local";

/** Alias "chat" over both sims, falling back to "chat-small" on the second, then "chat-large" on the first. */
export function demoTenantConfig(sims: Array<{ id: string; region: string; url: string }>) {
  return {
    backends: sims.map((s) => ({ id: s.id, region: s.region, url: s.url, model: "llama-sim", maxConcurrency: 256, resume: true })),
    models: {
      chat: { route: sims.map((s) => s.id), fallbacks: ["chat-small", "chat-large"] },
      "chat-small": { route: [sims[1]!.id] },
      "chat-large": { route: [sims[0]!.id] },
    },
  };
}
