// The write-behind timer: one flush per window however many changes, a failed flush tried again
// while something is left, and nothing after cancel.
import { describe, expect, it, vi } from "vitest";
import { FlushTimer } from "./flush-timer";

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("FlushTimer", () => {
  it("flushes once for all the changes of a window", async () => {
    const flush = vi.fn();
    const timer = new FlushTimer(flush, 20, "rows", () => true);
    for (let i = 0; i < 5; i++) timer.schedule();
    await wait(60);
    expect(flush).toHaveBeenCalledTimes(1);
  });

  it("logs a failed flush and tries again while something is pending", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    let pending = true;
    const flush = vi
      .fn()
      .mockImplementationOnce(() => {
        throw new Error("disk full");
      })
      .mockImplementation(() => (pending = false));
    const timer = new FlushTimer(flush, 10, "rows", () => pending);
    timer.schedule();
    await wait(80);
    expect(flush).toHaveBeenCalledTimes(2);
    expect(pending).toBe(false);
    expect(error).toHaveBeenCalledWith(expect.stringContaining("rows not written"));
    error.mockRestore();
  });

  it("does not flush after cancel (the flush ran with another write)", async () => {
    const flush = vi.fn();
    const timer = new FlushTimer(flush, 10, "rows", () => true);
    timer.schedule();
    timer.cancel();
    await wait(40);
    expect(flush).not.toHaveBeenCalled();
  });
});
