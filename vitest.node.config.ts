// Tests that run in Node: the pure modules (their tests sit beside them in src/, sim/ and scripts/), the sim
// itself, and end-to-end runs of the router on workerd (Miniflare's API) with real sims and the
// official openai SDK as the client.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "sim/**/*.test.ts", "scripts/**/*.test.ts", "test/node/**/*.test.ts", "test/e2e/**/*.test.ts"],
    // A module whose test needs the Workers runtime names it x.workerd.test.ts (vitest.config.ts).
    exclude: ["**/*.workerd.test.ts", "**/node_modules/**"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
