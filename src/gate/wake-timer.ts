// The gate's one wake-up timer: set for the earliest time the core asked to be woken (a queued
// request's wait limit), so however many ask, one timer runs.

export class WakeTimer {
  private timer: { at: number; handle: ReturnType<typeof setTimeout> } | undefined;

  /** `wake` runs with the time it was due (or now, if later). */
  constructor(private readonly wake: (now: number) => void) {}

  /** Wake at `at`, or earlier if already set for earlier. */
  at(at: number): void {
    if (this.timer && this.timer.at <= at) return;
    this.cancel();
    const handle = setTimeout(() => {
      this.timer = undefined;
      this.wake(Math.max(Date.now(), at));
    }, at - Date.now());
    this.timer = { at, handle };
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer.handle);
    this.timer = undefined;
  }
}
