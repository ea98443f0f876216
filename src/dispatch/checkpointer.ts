// Batches what the relay delivered into checkpoints for the gate: at most one call in flight, one
// every CHECKPOINT_MS while there is news, and a bare renewal every LEASE_RENEW_MS otherwise, so a
// tenant's gate sees a few writes per stream per second at most. A failed checkpoint keeps its
// chunks for the next one.
import type { Checkpoint } from "../gate/protocol";

export const CHECKPOINT_MS = 250;

export interface CheckpointTarget {
  checkpoint(progress: Checkpoint): Promise<unknown>;
  renew(): Promise<unknown>;
}

export class Checkpointer {
  private pending: string[] = [];
  private busy = false;
  private lastContact = Date.now();

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

  /** Called on a timer: sends a checkpoint if there is news, or a renewal if one is due. */
  async tick(text: string, tokens: number): Promise<void> {
    if (this.busy) return;
    const now = Date.now();
    if (this.pending.length === 0 && now - this.lastContact < this.renewEveryMs) return;
    this.busy = true;
    try {
      if (this.pending.length === 0) await this.target.renew();
      else {
        const progress = this.take(text, tokens);
        await this.target.checkpoint(progress);
        this.committed += progress.chunks.length;
        this.pending.splice(0, progress.chunks.length);
      }
      this.lastContact = now;
    } catch {
      /* kept for the next tick; the lease outlives a few failed renewals */
    } finally {
      this.busy = false;
    }
  }

  /** Everything not yet committed, to ride along with settle. */
  final(text: string, tokens: number): Checkpoint | undefined {
    return this.recording ? this.take(text, tokens) : undefined;
  }

  private take(text: string, tokens: number): Checkpoint {
    return { from: this.committed, chunks: [...this.pending], text, tokens };
  }
}
