import { describe, expect, it } from "vitest";
import { backendUrlProblem, routerHostOf } from "./backend-url";

const strict = { allowLocal: false, routerHost: "sluice.example.com" };
const local = { allowLocal: true, routerHost: "sluice.example.com" };

describe("backendUrlProblem", () => {
  it("accepts public http(s) backends", () => {
    for (const url of ["https://gpu-1.example.net/v1", "http://203.0.113.7:8000/v1", "https://[2001:db8::1]/v1"])
      expect(backendUrlProblem(url, strict)).toBeUndefined();
  });

  it("always refuses the metadata service, link-local addresses, credentials and the router itself", () => {
    const cases: Array<[string, RegExp]> = [
      ["http://169.254.169.254/latest/meta-data", /link-local/],
      ["http://[fe80::1]/v1", /link-local/],
      ["http://metadata.google.internal/computeMetadata/v1", /metadata/],
      ["http://[::ffff:169.254.169.254]/", /link-local/],
      ["https://user:pass@gpu.example.net/v1", /credentials/],
      ["https://SLUICE.example.com/v1", /router itself/],
      ["https://sluice.example.com./v1", /router itself/],
      ["https://sluice.example.com:443/v1", /router itself/],
      ["ftp://gpu.example.net/v1", /http/],
    ];
    for (const [url, why] of cases) {
      expect(backendUrlProblem(url, strict), url).toMatch(why);
      expect(backendUrlProblem(url, local), url).toMatch(why);
    }
  });

  it("refuses loopback, 0.0.0.0, private and localhost names unless the deployment opts in", () => {
    const urls = [
      "http://127.0.0.1:8000/v1",
      "http://2130706433/v1", // 127.0.0.1 written as one number
      "http://0.0.0.0:8000/v1",
      "http://[::1]:8000/v1",
      "http://[::]/v1",
      "http://localhost:8000/v1",
      "http://api.localhost/v1",
      "http://10.1.2.3/v1",
      "http://172.20.0.5/v1",
      "http://192.168.1.10/v1",
      "http://[fd00::5]/v1",
      "http://[::ffff:127.0.0.1]/v1",
    ];
    for (const url of urls) {
      expect(backendUrlProblem(url, strict), url).toMatch(/ALLOW_LOCAL_BACKENDS/);
      expect(backendUrlProblem(url, local), url).toBeUndefined();
    }
  });

  it("knows the router's host from its configured public URL alone, normalised", () => {
    expect(routerHostOf("https://Sluice.Example.com./")).toBe("sluice.example.com");
    expect(routerHostOf("http://localhost:8787")).toBe("localhost:8787");
    expect(routerHostOf(undefined)).toBe("");
    expect(routerHostOf("not a url")).toBe("");
    // Without one, nothing is taken for the router (never a request's Host header).
    expect(backendUrlProblem("https://anything.example.com/v1", { allowLocal: false, routerHost: "" })).toBeUndefined();
  });

  it("says what allows a local address", () => {
    const outbound = { allowLocal: false, routerHost: "", localAllowedBy: "the operator allows it" };
    expect(backendUrlProblem("http://127.0.0.1:9999/internal", outbound)).toBe(
      "points at a loopback address; allowed only when the operator allows it",
    );
  });

  it("tells the router from a backend on the same machine by the port", () => {
    const dev = { allowLocal: true, routerHost: "127.0.0.1:8787" };
    expect(backendUrlProblem("http://127.0.0.1:8787/v1", dev)).toMatch(/router itself/);
    expect(backendUrlProblem("http://127.0.0.1:8001/v1", dev)).toBeUndefined();
  });
});
