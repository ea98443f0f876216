// Starts the simulated backends (and a rogue one, rogue-backend.ts) the Worker under test calls over
// real HTTP on 127.0.0.1, and a webhook receiver for alerts (sim/webhook-receiver.ts).
import type { TestProject } from "vitest/node";
import { SimServer } from "../../sim/server";
import { RogueBackend } from "./rogue-backend";
import { WebhookReceiver } from "../../sim/webhook-receiver";

export const SIM_NAMES = ["a", "b", "c"] as const;

declare module "vitest" {
  export interface ProvidedContext {
    simPorts: Record<(typeof SIM_NAMES)[number], number>;
    roguePort: number;
    webhookPort: number;
  }
}

export default async function setup(project: TestProject) {
  const sims = SIM_NAMES.map((id) => new SimServer({ id, port: 0, tokensPerSecond: 500, firstTokenMs: 5 }));
  const ports = await Promise.all(sims.map((s) => s.listen()));
  project.provide("simPorts", { a: ports[0]!, b: ports[1]!, c: ports[2]! });
  const rogue = new RogueBackend();
  project.provide("roguePort", await rogue.listen());
  const receiver = new WebhookReceiver();
  project.provide("webhookPort", await receiver.listen());
  return async () => {
    await Promise.all([...sims.map((s) => s.close()), rogue.close(), receiver.close()]);
  };
}
