// A bare Worker that makes `?calls=k` Durable Object RPCs per request and answers "ok": the price of
// one gate call on this machine, without anything sluice does around it (`npm run bench:cpu`).
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  private n = 0;

  /** Arguments and an answer about the size of a settle call's. */
  async bump(report: { leaseId: string; outcome: string; durationMs: number }): Promise<{ n: number; ok: boolean }> {
    return { n: ++this.n, ok: report.durationMs >= 0 };
  }
}

interface Env {
  COUNTER: DurableObjectNamespace<Counter>;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const calls = Number(new URL(request.url).searchParams.get("calls") ?? 0);
    const stub = env.COUNTER.get(env.COUNTER.idFromName("one"));
    for (let i = 0; i < calls; i++) await stub.bump({ leaseId: "3f2c9a4e-lease", outcome: "complete", durationMs: i });
    return new Response("ok");
  },
};
