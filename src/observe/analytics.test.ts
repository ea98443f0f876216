import { describe, expect, it } from "vitest";
import { recordRequest, requestDataPoint } from "./analytics";
import type { RequestLine } from "./request-log";

const line: RequestLine = {
  level: "info",
  msg: "request",
  requestId: "r-1",
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  method: "POST",
  path: "/v1/chat/completions",
  surface: "chat",
  tenant: "acme",
  model: "chat",
  priority: "high",
  outcome: "partial",
  status: 200,
  code: "stream_cut",
  queueMs: 4,
  ttftMs: 35,
  totalMs: 900,
  promptTokens: 12,
  completionTokens: 40,
  backend: "use1-a",
  attempts: [
    { attempt: 1, backend: "use1-a", continuation: false, outcome: "failure", ms: 500, chunks: 40 },
    { attempt: 2, backend: "euw1-a", continuation: true, outcome: "failure", ms: 300, chunks: 0 },
  ],
};

describe("requestDataPoint", () => {
  it("indexes by tenant and keeps the line's figures in a fixed order", () => {
    expect(requestDataPoint(line)).toEqual({
      indexes: ["acme"],
      blobs: ["partial", "chat", "use1-a", "stream_cut", "high", "POST", "/v1/chat/completions", "chat"],
      doubles: [200, 4, 35, 900, 12, 40, 2],
    });
  });

  it("fills what a refusal does not have", () => {
    const refused: RequestLine = {
      ...line,
      surface: undefined,
      tenant: undefined,
      model: undefined,
      priority: undefined,
      backend: undefined,
      code: "invalid_api_key",
      outcome: "rejected",
      status: 401,
      queueMs: undefined,
      ttftMs: undefined,
      promptTokens: undefined,
      completionTokens: undefined,
      attempts: [],
    };
    expect(requestDataPoint(refused)).toEqual({
      indexes: [""],
      blobs: ["rejected", "", "", "invalid_api_key", "", "POST", "/v1/chat/completions", ""],
      doubles: [401, 0, -1, 900, 0, 0, 0],
    });
  });
});

describe("recordRequest", () => {
  it("writes one point to the dataset when there is one, and nothing otherwise", () => {
    const written: AnalyticsEngineDataPoint[] = [];
    recordRequest({ writeDataPoint: (p) => written.push(p!) }, line);
    recordRequest(undefined, line);
    expect(written).toEqual([requestDataPoint(line)]);
  });
});
