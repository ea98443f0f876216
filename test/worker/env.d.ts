import type { Env as SluiceEnv } from "../../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends SluiceEnv {
      ADMIN_TOKEN: string;
      TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
      SIM_PORTS: { a: number; b: number; c: number };
      ROGUE_PORT: number;
      WEBHOOK_PORT: number;
    }
  }
}
