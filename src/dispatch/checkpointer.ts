// Batches what the relay delivered into checkpoints for the gate: at most one call in flight, at
// most one every CHECKPOINT_MS while there is news (a timer catches the tail of a burst), and a
// bare renewal every LEASE_RENEW_MS otherwise, so a tenant's gate sees a few writes per stream
// per second at most. The gate answers how many chunks its journal holds: those are forgotten, the
// rest go out again with the next checkpoint (a failed call keeps them all).
import type { Checkpoint, CheckpointAck } from "../gate/core/protocol";

export const CHECKPOINT_MS = 250;

export interface CheckpointTarget {
  checkpoint(progress: Checkpoint): Promise<CheckpointAck>;
  renew(): Promise<unknown>;
  /** Text and token count delivered so far. */
  progress(): { text: string; tokens: number };
}

export class Checkpointer {
  private pending: string[] = [];
  private busy = false;
  private lastContact = Date.now();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** The journal lost chunks it had taken: the entry can never be whole again (see accept). */
  private gap = false;
  /** Recorded output was dropped (see discard). */
  private discarded = false;

  constructor(
    private readonly target: CheckpointTarget,
    /** Chunks (events) the journal already holds. */
    private committed: number,
    /** Whether chunks are recorded (requests with a journal key, until the journal refuses them). */
    private recording: boolean,
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
        this.accept(progress.from, await this.target.checkpoint(progress));
      }
      this.lastContact = Date.now();
    } catch {
      /* kept for the next tick; the lease outlives a few failed renewals */
    } finally {
      this.busy = false;
    }
  }

  /**
   * The output recorded so far was dropped (a non-streaming answer starting over on another
   * backend): nothing more is recorded, and the final checkpoint tells the gate the entry can never
   * be whole, so a replay is refused rather than spliced from two answers.
   */
  discard(): void {
    this.recording = false;
    this.pending = [];
    this.discarded = true;
  }

  /**
   * Everything not yet committed, to ride along with settle; stops the flush timer. After a gap it
   * still says where the journal should be, so the gate marks the entry as not replayable.
   */
  final(): Checkpoint | undefined {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.discarded) return { ...this.take(), discarded: true };
    return this.recording || this.gap ? this.take() : undefined;
  }

  /** Forgets what the journal holds (of the chunks sent from event `from` on). */
  private accept(from: number, ack: CheckpointAck): void {
    if (ack.recorded === null || ack.recorded < from) {
      // Nothing is recorded for this request any more (its entry was taken over, or its lease is
      // gone), or the journal lost chunks this Worker no longer holds: stop sending chunks.
      this.gap = ack.recorded !== null;
      this.recording = false;
      this.pending = [];
      return;
    }
    const taken = Math.min(this.pending.length, ack.recorded - from);
    this.pending.splice(0, taken);
    this.committed = from + taken;
  }

  private take(): Checkpoint {
    const { text, tokens } = this.target.progress();
    return { from: this.committed, chunks: [...this.pending], text, tokens };
  }
}
