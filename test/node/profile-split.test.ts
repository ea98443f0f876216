// The profile's split by part of the request path: native work counts for the JavaScript that
// called it, idle is left out, and files map to areas by the bundle's module comments.
import { describe, expect, it } from "vitest";
import { areaOf, bundleFiles, type CpuProfile, splitProfile } from "../../bench/profile-split";

const bundle = [
  "var prelude = 1;",
  "// node_modules/hono/dist/hono-base.js",
  "function dispatch() {}",
  "// src/admission/gate-client.ts",
  "function invoke() {}",
  "// src/gate/tenant-gate.ts",
  "function admit() {}",
].join("\n");

const frame = (id: number, functionName: string, url: string, lineNumber: number, children: number[] = []) => ({
  id,
  callFrame: { functionName, url, lineNumber },
  children,
});

describe("bundleFiles", () => {
  it("maps each line to the module it falls in", () => {
    const fileAt = bundleFiles(bundle);
    expect(fileAt(0)).toBe("(bundle prelude)");
    expect(fileAt(2)).toBe("node_modules/hono/dist/hono-base.js");
    expect(fileAt(4)).toBe("src/admission/gate-client.ts");
    expect(fileAt(6)).toBe("src/gate/tenant-gate.ts");
  });
});

describe("areaOf", () => {
  it("tells the gate client from the rest of admission, and the gate from the Worker", () => {
    expect(areaOf("src/admission/gate-client.ts")).toMatch(/^gate client/);
    expect(areaOf("src/admission/dedup-key.ts")).toMatch(/^API routes/);
    expect(areaOf("src/gate/core/plan.ts")).toMatch(/^gate: the Durable Object/);
    expect(areaOf("src/log.ts")).toMatch(/^request log/);
    expect(areaOf("src/index.ts")).toBe("other");
  });
});

describe("splitProfile", () => {
  it("charges a native call to its JavaScript caller and leaves idle out", () => {
    const profile: CpuProfile = {
      nodes: [
        frame(1, "(root)", "", -1, [2, 5, 6, 7]),
        frame(2, "dispatch", "file:///x/index.mjs", 2, [3]),
        frame(3, "invoke", "file:///x/index.mjs", 4, [4]),
        frame(4, "serialize", "", -1),
        frame(5, "(idle)", "", -1),
        frame(6, "(garbage collector)", "", -1),
        frame(7, "admit", "file:///x/index.mjs", 6),
      ],
      // dispatch once, invoke twice (once itself, once in its native callee), idle 4x, GC once, admit twice.
      samples: [2, 3, 4, 5, 5, 5, 5, 6, 7, 7],
    };
    const split = Object.fromEntries(splitProfile(profile, bundle).map((s) => [s.area, s.share]));
    expect(split).toEqual({
      "Hono (routing, middleware, context)": 1 / 6,
      "gate client: RPC calls and their retries": 2 / 6,
      "(garbage collector)": 1 / 6,
      "gate: the Durable Object's own work": 2 / 6,
    });
  });

  it("weighs each sample by the time until the next one", () => {
    const profile: CpuProfile = {
      nodes: [
        frame(1, "(root)", "", -1, [2, 3, 4]),
        frame(2, "dispatch", "index.mjs", 2),
        frame(3, "admit", "index.mjs", 6),
        frame(4, "(idle)", "", -1),
      ],
      samples: [2, 3, 4, 3],
      timeDeltas: [0, 1000, 3000, 500],
    };
    expect(splitProfile(profile, bundle)).toEqual([
      { area: "gate: the Durable Object's own work", share: 3.5 / 4.5, ms: 3.5 },
      { area: "Hono (routing, middleware, context)", share: 1 / 4.5, ms: 1 },
    ]);
  });
});
