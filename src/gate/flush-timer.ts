// The timer of a write-behind store (lease rows, journal appends): one flush at most `delayMs`
// after the first change, and a flush that throws is logged and tried again one delay later,
// while something is left to write.

import { logError } from "../log";

export class FlushTimer {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly flush: () => void,
    private readonly delayMs: number,
    /** What is written, for the log line of a failed flush. */
    private readonly what: string,
    private readonly hasPending: () => boolean,
  ) {}

  /** A flush is due: one is set unless one already is. */
  schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      try {
        this.flush();
      } catch (err) {
        logError(undefined, `${this.what} not written`, err);
        if (this.hasPending()) this.schedule();
      }
    }, this.delayMs);
  }

  /** The flush ran early (at once, or as part of another write). */
  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
