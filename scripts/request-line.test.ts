import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import type { RequestLine } from "../src/observe/request-log";
import { parseRequestLine, renderRequestLine } from "./request-line";

const base: RequestLine = {
  level: "info",
  msg: "request",
  requestId: "2dffb0eb-1794-488f-acd2-74bccedfb887",
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  method: "POST",
  path: "/v1/chat/completions",
  tenant: "demo",
  model: "chat",
  outcome: "complete",
  status: 200,
  queueMs: 3,
  ttftMs: 41,
  totalMs: 212,
  promptTokens: 9,
  completionTokens: 24,
  backend: "use1-a",
  attempts: [{ attempt: 1, backend: "use1-a", continuation: false, outcome: "success", ms: 200, chunks: 24 }],
};

const failed = (backend: string) => ({
  attempt: 1,
  backend,
  continuation: false,
  outcome: "failure" as const,
  code: "connect_error",
  ms: 1,
  chunks: 0,
});

describe("renderRequestLine", () => {
  it("says method, path, status, outcome, tenant and model, backend, times, tokens and the request id's start", () => {
    expect(renderRequestLine(base, false)).toBe(
      "POST /v1/chat/completions 200 complete demo/chat via use1-a  queue 3 ms, ttft 41 ms, total 212 ms, 9+24 tokens  [2dffb0eb]",
    );
  });

  it("names failed attempts, at most three, and counts the rest", () => {
    const line = { ...base, attempts: [failed("a"), failed("b"), failed("c"), failed("d"), ...base.attempts] };
    expect(renderRequestLine(line, false)).toContain("via use1-a, 5 attempts (a connect_error, b connect_error, c connect_error, 1 more)");
  });

  it("leaves out what a refusal does not have", () => {
    const line: RequestLine = {
      ...base,
      outcome: "rejected",
      status: 401,
      code: "invalid_api_key",
      tenant: undefined,
      model: undefined,
      queueMs: undefined,
      ttftMs: undefined,
      completionTokens: undefined,
      promptTokens: undefined,
      backend: undefined,
      attempts: [],
      totalMs: 1,
    };
    expect(renderRequestLine(line, false)).toBe("POST /v1/chat/completions 401 rejected invalid_api_key  total 1 ms  [2dffb0eb]");
  });

  it("colours by outcome: green when answered, yellow when refused, red when broken", () => {
    const sgr = (line: RequestLine) => renderRequestLine(line, true).match(/^\x1b\[(\d+)m/)?.[1];
    expect(sgr(base)).toBe("32");
    expect(sgr({ ...base, outcome: "rejected", status: 429 })).toBe("33");
    expect(sgr({ ...base, outcome: "partial", status: 200 })).toBe("31");
    expect(sgr({ ...base, outcome: "failed", status: 502 })).toBe("31");
    expect(stripVTControlCharacters(renderRequestLine(base, true))).toBe(renderRequestLine(base, false));
  });
});

describe("parseRequestLine", () => {
  it("takes the router's request lines and nothing else", () => {
    expect(parseRequestLine(JSON.stringify(base))).toEqual(base);
    expect(parseRequestLine('{"level":"error","msg":"dead letter not written"}')).toBeUndefined();
    expect(parseRequestLine('{"msg":"request"')).toBeUndefined();
    expect(parseRequestLine("[wrangler:info] Ready")).toBeUndefined();
  });
});
