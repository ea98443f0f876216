// A webhook receiver for tests and the benchmark: records every POST it gets under /hooks/... (headers
// and body, the last MAX_RECORDED), and answers each path with the status a test set for it (204 by
// default), so a receiver can be made to fail and then heal. GET /received?path=/hooks/x lists what
// a path got, oldest first; POST /answer {"path", "status", "times"?} sets a path's answer (for the
// next `times` requests only, then 204 again).
import http from "node:http";

export const MAX_RECORDED = 1_000;

export interface ReceivedWebhook {
  path: string;
  headers: Record<string, string>;
  body: string;
  /** What the receiver answered. */
  status: number;
  /** Unix ms. */
  receivedAt: number;
}

export class WebhookReceiver {
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  private received: ReceivedWebhook[] = [];
  private readonly answers = new Map<string, { status: number; times?: number }>();

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(port, "127.0.0.1", resolve));
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** What `path` received, oldest first. */
  receivedAt(path: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.path === path);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://receiver");
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const send = (status: number, json?: unknown) => {
        res.writeHead(status, json === undefined ? {} : { "content-type": "application/json" });
        res.end(json === undefined ? undefined : JSON.stringify(json));
      };
      if (req.method === "GET" && url.pathname === "/received") return send(200, this.receivedAt(url.searchParams.get("path") ?? ""));
      if (req.method === "POST" && url.pathname === "/answer") {
        const { path, status, times } = JSON.parse(body) as { path: string; status: number; times?: number };
        this.answers.set(path, { status, times });
        return send(200, { path, status, times });
      }
      if (req.method === "POST" && url.pathname.startsWith("/hooks/")) {
        const answer = this.answers.get(url.pathname);
        const status = answer?.status ?? 204;
        if (answer?.times !== undefined && --answer.times <= 0) this.answers.delete(url.pathname);
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
        this.received = [
          ...this.received.slice(-(MAX_RECORDED - 1)),
          { path: url.pathname, headers, body, status, receivedAt: Date.now() },
        ];
        return send(status);
      }
      send(404, { error: `no route ${req.method} ${url.pathname}` });
    });
  }
}
