// `npm run dev` as a process manager, an IDE or `docker stop` runs it: started, then sent SIGTERM
// (or SIGHUP) to npm's own process. Everything it started (tsx, the sims, workerd) must stop and free
// its ports, so the next `npm run dev` starts. Its start-up output stays short (no migration tables).
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** Ports no other test uses: the router's, then the two sims'. */
const PORT = 18_787;
const SIM_PORT = 19_101;

let dev: ChildProcess | undefined;

afterEach(() => {
  // Whatever the test did, nothing it started outlives it: the whole process group goes.
  if (dev?.pid) {
    try {
      process.kill(-dev.pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
});

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function startDev(): Promise<{ output: () => string }> {
  let output = "";
  dev = spawn("npm", ["run", "dev", "--", "--port", String(PORT), "--sim-port", String(SIM_PORT), "--quiet"], {
    cwd: ROOT,
    detached: true, // its own process group, for the cleanup above
    stdio: ["ignore", "pipe", "pipe"],
  });
  dev.stdout!.on("data", (d) => (output += d));
  dev.stderr!.on("data", (d) => (output += d));
  await eventually(async () => output.includes("[dev] sluice is ready"), 180_000);
  return { output: () => output };
}

describe("npm run dev", () => {
  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    it(`stops everything it started when npm's own process gets ${signal}`, async () => {
      const { output } = await startDev();
      for (const port of [PORT, SIM_PORT, SIM_PORT + 1]) expect(await listening(port), `port ${port}`).toBe(true);
      const ready = output().slice(0, output().indexOf("[dev] sluice is ready"));
      expect(ready).toMatch(/\[dev\] D1 migrations: (up to date|applied \d+)/);
      expect(ready).not.toContain("┌"); // wrangler's migration tables
      process.kill(dev!.pid!, signal);
      await eventually(async () => {
        for (const port of [PORT, SIM_PORT, SIM_PORT + 1]) if (await listening(port)) return false;
        return true;
      }, 60_000);
      // Nothing of the group is left running.
      await eventually(async () => {
        try {
          process.kill(-dev!.pid!, 0);
          return false;
        } catch {
          return true;
        }
      }, 60_000);
    }, 300_000);
  }
});
