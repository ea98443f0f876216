import { describe, expect, it } from "vitest";
import { allowedMethods } from "./allowed-methods";

const routes = [
  { method: "ALL", path: "/admin/*" },
  { method: "POST", path: "/v1/chat/completions" },
  { method: "GET", path: "/v1/models" },
  { method: "GET", path: "/admin/tenants/:tenant" },
  { method: "PUT", path: "/admin/tenants/:tenant" },
  { method: "DELETE", path: "/admin/tenants/:tenant" },
  { method: "DELETE", path: "/admin/tenants/:tenant/keys/:id" },
];

describe("allowedMethods", () => {
  it("lists the methods the routes answer at a path, HEAD with GET, middleware not counted", () => {
    expect(allowedMethods(routes, "/v1/chat/completions")).toEqual(["POST"]);
    expect(allowedMethods(routes, "/v1/models")).toEqual(["GET", "HEAD"]);
    expect(allowedMethods(routes, "/admin/tenants/acme")).toEqual(["DELETE", "GET", "HEAD", "PUT"]);
    expect(allowedMethods(routes, "/admin/tenants/acme/keys/0123")).toEqual(["DELETE"]);
  });

  it("lists none for a path no route has (a 404)", () => {
    expect(allowedMethods(routes, "/v1/nothing")).toEqual([]);
    expect(allowedMethods(routes, "/admin/tenants/acme/other")).toEqual([]);
    expect(allowedMethods(routes, "/v1/chat/completions.json")).toEqual([]);
  });
});
