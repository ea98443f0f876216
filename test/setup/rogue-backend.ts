// A backend that misbehaves on purpose, one behaviour per path prefix: POST
// /<behaviour>/v1/chat/completions. The hardening tests point tenants at it. GET /stats tells how
// many of its streams are open and how many bytes it sent (a cancelled generation stops sending).
import http from "node:http";
import type { RogueStats } from "./rogue-types";

const chunk = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({
    id: "chatcmpl-rogue",
    object: "chat.completion.chunk",
    created: 1,
    model: "rogue",
    choices: [{ index: 0, delta: { content }, finish_reason: finish }],
  })}\n\n`;

export class RogueBackend {
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  readonly stats: RogueStats = { requests: {}, open: 0, bytesSent: 0, closedByClient: 0 };

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://rogue");
    if (req.method === "GET" && url.pathname === "/stats") return void res.end(JSON.stringify(this.stats));
    if (req.method === "POST" && url.pathname === "/stats/reset") {
      Object.assign(this.stats, { requests: {}, bytesSent: 0, closedByClient: 0 });
      return void res.end("{}");
    }
    const behaviour = url.pathname.split("/")[1] ?? "";
    this.stats.requests[behaviour] = (this.stats.requests[behaviour] ?? 0) + 1;
    req.resume();
    req.on("end", () => this.respond(behaviour, url, res, req.headers.authorization ?? ""));
  }

  private respond(behaviour: string, url: URL, res: http.ServerResponse, authorization: string): void {
    const sse = { "content-type": "text/event-stream" };
    switch (behaviour) {
      case "endless-line":
        res.writeHead(200, sse);
        return this.pump(res, () => "x".repeat(64 * 1024), 'data: {"choices":[{"delta":{"content":"');
      case "endless-json":
        res.writeHead(200, { "content-type": "application/json" });
        return this.pump(res, () => `"${"y".repeat(64 * 1024)}",`, '{"choices":[');
      case "done-first":
        res.writeHead(200, sse);
        return void res.end("data: [DONE]\n\n");
      case "ignores-max-tokens": {
        res.writeHead(200, sse);
        let n = 0;
        return this.pump(res, () => chunk(`t${n++} `));
      }
      case "auth-401":
      case "auth-403":
        res.writeHead(behaviour === "auth-401" ? 401 : 403, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ error: { message: "Incorrect API key provided: sk-revoked-upstream-secret", type: "auth" } }));
      case "auth-echo":
        // As some servers do: the key it was sent, and where it lives, in its error body.
        res.writeHead(401, { "content-type": "application/json" });
        return void res.end(
          JSON.stringify({ error: { message: `Incorrect API key provided: ${authorization}`, at: `http://10.9.8.7:8000${url.pathname}` } }),
        );
      case "redirect":
        res.writeHead(307, { location: url.searchParams.get("to") ?? "http://127.0.0.1:1/v1/chat/completions" });
        return void res.end();
      default:
        res.writeHead(404);
        res.end();
    }
  }

  /** Writes `next()` as fast as the client takes it, until the client goes away. */
  private pump(res: http.ServerResponse, next: () => string, head = ""): void {
    this.stats.open++;
    let open = true;
    res.on("close", () => {
      if (!open) return;
      open = false;
      this.stats.open--;
      this.stats.closedByClient++;
    });
    const write = (text: string) => {
      this.stats.bytesSent += Buffer.byteLength(text);
      return res.write(text);
    };
    write(head);
    const go = () => {
      while (open && write(next())) {
        /* until the socket's buffer is full */
      }
      if (open) res.once("drain", go);
    };
    go();
  }
}
