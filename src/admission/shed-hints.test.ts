import { describe, expect, it } from "vitest";
import { ShedHints } from "./shed-hints";
import type { Rejection } from "../gate/core/protocol";

const full = (shedForMs?: number): Rejection => ({
  kind: "reject",
  status: 429,
  code: "queue_full",
  message: "full",
  retryAfterSec: 2,
  shedForMs,
});

describe("ShedHints", () => {
  it("repeats a verdict for its priority and lower ones until it expires, and counts what it answered", () => {
    const h = new ShedHints();
    h.note("t", "normal", full(25), 1_000);
    expect(h.check("t", "normal", 1_010)).toMatchObject({ code: "queue_full", retryAfterSec: 2 });
    expect(h.check("t", "low", 1_020)).toBeDefined();
    expect(h.check("t", "high", 1_020)).toBeUndefined(); // may still displace a queued request
    expect(h.check("t", "normal", 1_025)).toBeUndefined(); // expired
    expect(h.check("other", "low", 1_010)).toBeUndefined();
    expect(h.takeAnswered("t")).toBe(2);
    expect(h.takeAnswered("t")).toBe(0);
  });

  it("repeats nothing the gate did not allow, and widens to the highest priority turned away", () => {
    const h = new ShedHints();
    h.note("t", "low", full(), 0);
    expect(h.check("t", "low", 1)).toBeUndefined();
    h.note("t", "low", full(50), 0);
    h.note("t", "high", full(50), 10);
    expect(h.check("t", "high", 20)).toBeDefined();
    h.note("t", "low", full(50), 30); // a later low verdict keeps high covered
    expect(h.check("t", "high", 40)).toBeDefined();
  });

  it("holds at most maxTenants hints", () => {
    const h = new ShedHints(2);
    for (const t of ["a", "b", "c"]) h.note(t, "normal", full(100), 0);
    expect(h.check("a", "normal", 1)).toBeUndefined();
    expect(h.check("c", "normal", 1)).toBeDefined();
  });
});
