import { describe, expect, it } from "vitest";
import { MAX_TRACESTATE, randomHex, traceHeaders, traceOf } from "./trace-context";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
let n = 0;
const counting = (bytes: number) => (++n).toString(16).padStart(bytes * 2, "0");

describe("traceOf", () => {
  it("joins the client's trace, keeping its flags and tracestate", () => {
    expect(traceOf(`00-${TRACE}-${PARENT}-01`, "congo=t61rcWkgMzE")).toEqual({
      traceId: TRACE,
      parentId: PARENT,
      flags: "01",
      tracestate: "congo=t61rcWkgMzE",
    });
    expect(traceOf(`00-${TRACE}-${PARENT}-00`, undefined)).toEqual({ traceId: TRACE, parentId: PARENT, flags: "00" });
  });

  it("reads a later version's first four fields and ignores the rest", () => {
    expect(traceOf(`cc-${TRACE}-${PARENT}-01-what-the-future-holds`, undefined).traceId).toBe(TRACE);
  });

  it("starts a new trace (sampled) for a missing or invalid traceparent", () => {
    for (const bad of [
      undefined,
      "",
      "garbage",
      `00-${"0".repeat(32)}-${PARENT}-01`,
      `00-${TRACE}-${"0".repeat(16)}-01`,
      `ff-${TRACE}-${PARENT}-01`,
      `00-${TRACE.toUpperCase()}-${PARENT}-01`,
      `00-${TRACE}-${PARENT}-01-extra`,
    ]) {
      const trace = traceOf(bad, "kept=no", counting);
      expect(trace.traceId, String(bad)).toMatch(/^[0-9a-f]{32}$/);
      expect(trace.traceId).not.toBe(TRACE);
      expect(trace).toMatchObject({ flags: "01" });
      expect(trace.tracestate).toBeUndefined();
    }
  });

  it("drops a tracestate longer than the bound", () => {
    expect(traceOf(`00-${TRACE}-${PARENT}-01`, `a=${"x".repeat(MAX_TRACESTATE)}`).tracestate).toBeUndefined();
  });
});

describe("traceHeaders", () => {
  it("makes the attempt's span the backend's parent, in the same trace", () => {
    const trace = traceOf(`00-${TRACE}-${PARENT}-01`, "congo=t61rcWkgMzE");
    expect(traceHeaders(trace, "b7ad6b7169203331")).toEqual({
      traceparent: `00-${TRACE}-b7ad6b7169203331-01`,
      tracestate: "congo=t61rcWkgMzE",
    });
    expect(randomHex(8)).toMatch(/^[0-9a-f]{16}$/);
  });
});
