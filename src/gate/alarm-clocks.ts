// A Durable Object has one alarm; the gate keeps three clocks on it: the earliest lease deadline,
// the next alert evaluation, and the end of a deleted tenant's mark. The storage alarm is set to the
// earliest of them, and written only when that changes.

export type Clock = "leases" | "alerts" | "tombstone";

export class AlarmClocks {
  private readonly at = new Map<Clock, number>();
  /** What the storage alarm was last set to (undefined: none, or not known). */
  private setAt: number | undefined;

  constructor(private readonly storage: Pick<DurableObjectStorage, "setAlarm" | "deleteAlarm">) {}

  get(clock: Clock): number | undefined {
    return this.at.get(clock);
  }

  /** Sets (or, with undefined, stops) one clock, and the storage alarm to the earliest. */
  set(clock: Clock, at: number | undefined): void {
    if (at === undefined) this.at.delete(clock);
    else this.at.set(clock, at);
    const earliest = this.at.size > 0 ? Math.min(...this.at.values()) : undefined;
    if (earliest === this.setAt) return;
    this.setAt = earliest;
    void (earliest === undefined ? this.storage.deleteAlarm() : this.storage.setAlarm(earliest));
  }

  /** The alarm fired: it is spent (the handler sets the clocks again). */
  fired(): void {
    this.setAt = undefined;
  }

  /** Every clock stopped and the alarm deleted, as the storage is erased. */
  clear(): Promise<void> {
    this.at.clear();
    this.setAt = undefined;
    return this.storage.deleteAlarm();
  }
}
