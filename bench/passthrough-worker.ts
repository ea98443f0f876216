// The floor and the naive baseline: a bare pass-through proxy Worker. No queue, no retries, no
// breaker, no parsing: each request goes to the next upstream in turn and its response is
// returned as it comes.
interface Env {
  /** Comma-separated base URLs, e.g. http://127.0.0.1:9101/v1 */
  UPSTREAMS: string;
}

let next = 0;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const upstreams = env.UPSTREAMS.split(",");
    const base = upstreams[next++ % upstreams.length]!;
    const path = new URL(request.url).pathname.replace(/^\/v1/, "");
    return fetch(`${base}${path}`, { method: request.method, headers: request.headers, body: request.body });
  },
};
