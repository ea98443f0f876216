// A journal entry's totals rebuilt from its chunk rows are the totals it was written with, whatever
// the texts did between writes (grew, stood still, or started over).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addChange, type EntryTotals, NO_TOTALS, totalsChange } from "./entry-totals";

describe("entry totals", () => {
  it("stores only the text a write added while the text grows", () => {
    const before: EntryTotals = { count: 3, text: "Hello", tokens: 2, bytes: 90, overflow: false };
    const change = totalsChange(before, { text: "Hello, world", tokens: 4, overflow: false }, 2, 60);
    expect(change).toEqual({ n: 2, text_from: 5, text: ", world", tokens: 4, bytes: 60, overflow: 0 });
    expect(addChange(before, change)).toEqual({ count: 5, text: "Hello, world", tokens: 4, bytes: 150, overflow: false });
  });

  it("stores the whole text when it started over", () => {
    const before: EntryTotals = { count: 3, text: "Hello", tokens: 2, bytes: 90, overflow: false };
    const change = totalsChange(before, { text: "Hi", tokens: 1, overflow: true }, 0, 0);
    expect(change).toMatchObject({ text_from: 0, text: "Hi", overflow: 1 });
    expect(addChange(before, change)).toEqual({ count: 3, text: "Hi", tokens: 1, bytes: 90, overflow: true });
  });

  it("rebuilds any sequence of writes", () => {
    const write = fc.record({
      grow: fc.boolean(),
      text: fc.string({ maxLength: 8 }),
      tokens: fc.nat(1_000),
      overflow: fc.boolean(),
      chunks: fc.nat(5),
      bytes: fc.nat(500),
    });
    fc.assert(
      fc.property(fc.array(write, { maxLength: 30 }), (writes) => {
        let written = NO_TOTALS;
        let rebuilt = NO_TOTALS;
        for (const w of writes) {
          const after = {
            text: w.grow ? written.text + w.text : w.text,
            tokens: w.tokens,
            overflow: written.overflow || w.overflow,
          };
          const change = totalsChange(written, after, w.chunks, w.bytes);
          written = { ...after, count: written.count + w.chunks, bytes: written.bytes + w.bytes };
          rebuilt = addChange(rebuilt, change);
          // A grown text costs only what it added.
          if (w.grow) expect(change.text).toBe(w.text);
        }
        expect(rebuilt).toEqual(written);
      }),
    );
  });
});
