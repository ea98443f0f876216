// Tests that run in Node: the sim itself, and end-to-end runs of the router on workerd
// (Miniflare's API) with real sims and the official openai SDK as the client.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/node/**/*.test.ts", "test/e2e/**/*.test.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
