import { describe, expect, it } from "vitest";
import { type RequestLine, RequestLog, outcomeOfStatus } from "./request-log";

function logged(): { log: RequestLog; lines: RequestLine[] } {
  const lines: RequestLine[] = [];
  return {
    log: new RequestLog("req-1", "4bf92f3577b34da6a3ce929d0e0e4736", "POST", "/v1/chat/completions", 1_000, (l) => lines.push(l)),
    lines,
  };
}

describe("RequestLog", () => {
  it("writes one line, once, with times measured from the start and the first token", () => {
    const { log, lines } = logged();
    log.set({ tenant: "acme", model: "chat", priority: "normal", queueMs: 5 });
    log.firstToken(1_040);
    log.firstToken(1_090); // only the first counts
    log.addAttempts(
      [
        {
          attempt: 1,
          backendId: "a",
          continuation: false,
          startedAt: 1_005,
          durationMs: 10,
          outcome: "failure",
          errorCode: "connect_error",
          chunks: 0,
        },
        {
          attempt: 2,
          backendId: "b",
          continuation: true,
          startedAt: 1_020,
          durationMs: 80,
          outcome: "success",
          chunks: 12,
          spanId: "00f067aa0ba902b7",
        },
      ],
      (id) => (id === "a" ? "us-east" : undefined),
    );
    log.end("complete", 200, undefined, 1_100);
    expect(log.end("failed", 500, "internal_error", 1_200)).toBeUndefined();
    expect(lines).toEqual([
      {
        level: "info",
        msg: "request",
        requestId: "req-1",
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        method: "POST",
        path: "/v1/chat/completions",
        tenant: "acme",
        model: "chat",
        priority: "normal",
        queueMs: 5,
        outcome: "complete",
        status: 200,
        code: undefined,
        ttftMs: 40,
        totalMs: 100,
        attempts: [
          {
            attempt: 1,
            backend: "a",
            region: "us-east",
            continuation: false,
            outcome: "failure",
            code: "connect_error",
            httpStatus: undefined,
            ms: 10,
            chunks: 0,
            spanId: undefined,
          },
          {
            attempt: 2,
            backend: "b",
            region: undefined,
            continuation: true,
            outcome: "success",
            code: undefined,
            httpStatus: undefined,
            ms: 80,
            chunks: 12,
            spanId: "00f067aa0ba902b7",
          },
        ],
      },
    ]);
  });

  it("warns for a partial answer and a 5xx, informs otherwise", () => {
    const level = (outcome: Parameters<RequestLog["end"]>[0], status: number) => {
      const { log, lines } = logged();
      log.end(outcome, status, undefined, 2_000);
      return lines[0]!.level;
    };
    expect(level("partial", 200)).toBe("warn");
    expect(level("failed", 502)).toBe("warn");
    expect(level("rejected", 429)).toBe("info");
    expect(level("complete", 200)).toBe("info");
  });

  it("has no ttft when no token was sent", () => {
    const { log, lines } = logged();
    log.end("rejected", 401, "invalid_api_key", 1_001);
    expect(lines[0]!.ttftMs).toBeUndefined();
  });

  it("names the outcome of a plain status", () => {
    expect([200, 304, 400, 429, 500, 503].map(outcomeOfStatus)).toEqual([
      "complete",
      "complete",
      "rejected",
      "rejected",
      "failed",
      "failed",
    ]);
  });
});
