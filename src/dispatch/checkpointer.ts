// Batches what the relay delivered into checkpoints for the gate: at most one call in flight, at
// most one every CHECKPOINT_MS while there is news (a timer catches the tail of a burst), and a
// bare renewal every LEASE_RENEW_MS otherwise, so a tenant's gate sees a few writes per stream
// per second at most. A failed checkpoint keeps its chunks for the next one.
import type { Checkpoint } from "../gate/protocol";

export const CHECKPOINT_MS = 250;

export interface CheckpointTarget {
  checkpoint(progress: Checkpoint): Promise<unknown>;
  renew(): Promise<unknown>;
  /** Text and token count delivered so far. */
  progress(): { text: string; tokens: number };
}

export class Checkpointer {
  private pending: string[] = [];
  private busy = false;
  private lastContact = Date.now();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly target: CheckpointTarget,
    /** Chunks (events) the journal already holds. */
    private committed: number,
    /** Whether chunks are recorded at all (requests with a journal key). */
    private readonly recording: boolean,
    private readonly renewEveryMs: number,
  ) {}

  /** Notes a chunk the client was sent (its JSON). */
  add(chunkJson: string): void {
    if (this.recording) this.pending.push(chunkJson);
  }

  /**
   * Called after each relayed batch and on a slow timer: sends a checkpoint if there is news and
   * the last contact is CHECKPOINT_MS old (else arranges one for then), or a renewal if one is due.
   */
  async tick(): Promise<void> {
    if (this.busy) return;
    const since = Date.now() - this.lastContact;
    if (this.pending.length > 0 && since < CHECKPOINT_MS) {
      this.flushTimer ??= setTimeout(() => {
        this.flushTimer = undefined;
        void this.tick();
      }, CHECKPOINT_MS - since);
      return;
    }
    if (this.pending.length === 0 && since < this.renewEveryMs) return;
    this.busy = true;
    try {
      if (this.pending.length === 0) await this.target.renew();
      else {
        const progress = this.take();
        await this.target.checkpoint(progress);
        this.committed += progress.chunks.length;
        this.pending.splice(0, progress.chunks.length);
      }
      this.lastContact = Date.now();
    } catch {
      /* kept for the next tick; the lease outlives a few failed renewals */
    } finally {
      this.busy = false;
    }
  }

  /** Everything not yet committed, to ride along with settle; stops the flush timer. */
  final(): Checkpoint | undefined {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    return this.recording ? this.take() : undefined;
  }

  private take(): Checkpoint {
    const { text, tokens } = this.target.progress();
    return { from: this.committed, chunks: [...this.pending], text, tokens };
  }
}
