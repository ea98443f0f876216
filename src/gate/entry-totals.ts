// A journal entry's running totals, as stored: the entry's row holds them as of its last fold (its
// start, its end, or a write that had no chunks), and each chunk row written since adds to them
// (how many chunks, how the text changed, the tokens so far). A checkpoint then writes one row, its
// chunks, instead of two (its chunks and the entry's update): Cloudflare bills a Durable Object's
// storage per row written. Pure.

export interface EntryTotals {
  /** Chunks recorded. */
  count: number;
  /** Text delivered so far. */
  text: string;
  tokens: number;
  /** Bytes of the chunks recorded. */
  bytes: number;
  /** Chunks stopped being recorded (see EntrySnapshot.overflow). */
  overflow: boolean;
}

/** What a chunk row adds to the totals before it. */
export interface TotalsChange {
  /** Chunks in the row. */
  n: number;
  /** The text is the text before, cut at `text_from`, then `text`. */
  text_from: number;
  text: string;
  /** Tokens so far (not a difference). */
  tokens: number;
  bytes: number;
  overflow: number;
}

export const NO_TOTALS: EntryTotals = { count: 0, text: "", tokens: 0, bytes: 0, overflow: false };

/** How the totals change from `before` to `after` when `chunks` chunks of `bytes` bytes are added. */
export function totalsChange(
  before: EntryTotals,
  after: Omit<EntryTotals, "count" | "bytes">,
  chunks: number,
  bytes: number,
): TotalsChange {
  // Text only grows while a generation runs; a non-streamed answer started over begins again.
  const grows = after.text.startsWith(before.text);
  return {
    n: chunks,
    text_from: grows ? before.text.length : 0,
    text: grows ? after.text.slice(before.text.length) : after.text,
    tokens: after.tokens,
    bytes,
    overflow: after.overflow ? 1 : 0,
  };
}

/** The totals after a chunk row. */
export function addChange(totals: EntryTotals, change: TotalsChange): EntryTotals {
  return {
    count: totals.count + change.n,
    text: totals.text.slice(0, change.text_from) + change.text,
    tokens: change.tokens,
    bytes: totals.bytes + change.bytes,
    overflow: totals.overflow || change.overflow === 1,
  };
}
