// Tests that run inside workerd (the Workers runtime) with real Durable Objects, KV and D1.
// Simulated backends are real HTTP servers started by test/setup/sims.ts (globalSetup).
import { defineConfig } from "vitest/config";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { quietWorkerdNotes, showConsoleLine } from "./test/setup/quiet-logs.ts";

quietWorkerdNotes();

export default defineConfig(async () => {
  const migrations = await readD1Migrations("migrations");
  return {
    plugins: [
      cloudflareTest(({ inject }) => ({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            ADMIN_TOKEN: "test-admin-token",
            CONFIG_CACHE_TTL_SECONDS: "0",
            TEST_MIGRATIONS: migrations,
            SIM_PORTS: inject("simPorts"),
            ROGUE_PORT: inject("roguePort"),
            WEBHOOK_PORT: inject("webhookPort"),
            // A failed alert webhook is tried again at once: the retries and the dead-letter queue run in seconds.
            ALERT_RETRY_DELAY_SECONDS: "0",
            JOB_RETRY_DELAY_SECONDS: "0",
            // The sims listen on 127.0.0.1: a deployment must opt in to such backends.
            ALLOW_LOCAL_BACKENDS: "true",
          },
          // Optional in production; bound here so the data point per request is written (and tested).
          analyticsEngineDatasets: { ANALYTICS: { dataset: "sluice_requests" } },
        },
      })),
    ],
    test: {
      include: ["test/worker/**/*.test.ts", "src/**/*.workerd.test.ts"],
      globalSetup: ["test/setup/sims.ts"],
      setupFiles: ["test/worker/apply-migrations.ts"],
      // The sims are shared, and tests read their counters: one file at a time.
      fileParallelism: false,
      onConsoleLog: showConsoleLine,
      testTimeout: 30_000,
      hookTimeout: 30_000,
    },
  };
});
