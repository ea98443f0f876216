// Followers of journal keys: calls waiting (up to a time) for a key's entry to change, as a joined
// twin waits for its live generation's next chunks. The journal wakes a key's followers when it
// writes the key's chunks or ends its run; a deleted tenant's gate wakes them all.
import type { EntrySnapshot } from "./core/journal-entry";
import type { FollowResult } from "./core/protocol";

/** The entry's chunks from index `from`, or undefined while it is live and has nothing new. */
export type EntryRead = (entry: EntrySnapshot | undefined) => FollowResult | undefined;

/** Reads an entry for a follower: `live` says whether its generation still holds a lease. */
export function followRead(from: number, live: (entry: EntrySnapshot) => boolean): EntryRead {
  return (entry) => {
    if (!entry) return { chunks: [], state: "gone", tokens: 0 };
    const running = live(entry);
    if (entry.chunks.length <= from && running) return undefined;
    const state = running ? "running" : entry.state === "running" ? "abandoned" : entry.state;
    return { chunks: entry.chunks.slice(from), state, tokens: entry.tokens };
  };
}

export class Followers {
  private readonly waiting = new Map<string, Set<() => void>>();

  /** Resolves when `key` is woken, or after `waitMs`. */
  wait(key: string, waitMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const set = this.waiting.get(key) ?? new Set();
      this.waiting.set(key, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.waiting.delete(key);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      set.add(done);
    });
  }

  wake(key: string): void {
    for (const done of [...(this.waiting.get(key) ?? [])]) done();
  }

  wakeAll(): void {
    for (const key of [...this.waiting.keys()]) this.wake(key);
  }
}
