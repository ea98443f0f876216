// The jobs queue's messages (consumer.ts runs them). A module of its own, below the Worker's
// bindings (env.ts), which name the queue's type.
export type JobMessage =
  | { kind: "start"; tenant: string; batchId: string; from: number }
  | { kind: "line"; tenant: string; batchId: string; line: number; customId: string; offset: number; length: number }
  | { kind: "finalize"; tenant: string; batchId: string }
  /** `once`: a redriven dead letter, tried in one delivery only (see jobs/generate.ts). */
  | { kind: "generate"; tenant: string; generationId: string; once?: true };
