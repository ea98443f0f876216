// Background responses of the Responses API (`background: true`): an async generation
// (generations.ts) under the response's own id, and a stored response (serve/stored-responses.ts)
// that holds the response as queued, with the conversation up to its input, while it runs. Once the
// generation ended, the stored response becomes its end (completed, incomplete, failed or
// cancelled) with the whole conversation, as a response stored at once is. Its job, a stream that
// saw the end, or the first read after, writes it; whichever is first, they write the same.
import type { ChatMessage } from "../config/chat-request";
import type { ChatCompletion } from "../stream/surface";
import { StoredResponses } from "../serve/stored-responses";
import { answerMessages, completedResponse, inState } from "../surfaces/responses/response";
import { GenerationStore, generationEnded, type GenerationObject } from "./generations";

/** A generation that runs a background response: its id is the response's. */
export const runsResponse = (generationId: string) => generationId.startsWith("resp_");

/** A response that has not ended yet. */
export const responseOpen = (response: Record<string, unknown>) => response.status === "queued" || response.status === "in_progress";

/** The response `shell` as `generation` has it: queued or in progress while it runs, else its end. */
export function responseAt(shell: Record<string, unknown>, generation: GenerationObject): Record<string, unknown> {
  if (!generationEnded(generation)) return { ...shell, status: generation.status === "running" ? "in_progress" : "queued" };
  if (generation.status === "cancelled") return inState(shell, "cancelled", []);
  const answer = generation.response!;
  if (answer.status_code >= 200 && answer.status_code < 300) return completedResponse(shell, answer.body as ChatCompletion);
  const error = (answer.body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof error?.code === "string" ? error.code : "server_error";
  const message = typeof error?.message === "string" ? error.message : "The response failed.";
  return inState(shell, "failed", [], { error: { code, message } });
}

export class BackgroundResponses {
  private readonly stored: StoredResponses;
  private readonly generations: GenerationStore;

  constructor(db: D1Database, tenant: string) {
    this.stored = new StoredResponses(db, tenant);
    this.generations = new GenerationStore(db, tenant);
  }

  /** A stored response and its conversation as they stand: an open one is brought up to date with its generation. */
  async current(id: string, now: number): Promise<{ response: Record<string, unknown>; conversation: ChatMessage[] } | null> {
    const entry = await this.stored.entry(id, now);
    if (!entry || !responseOpen(entry.response)) return entry;
    const generation = await this.generations.get(id);
    // Generations are kept a week, and end (their job writes the response) long before.
    if (!generation) return entry;
    const response = responseAt(entry.response, generation);
    if (responseOpen(response)) return { ...entry, response };
    return this.store(id, entry.conversation, response, now);
  }

  /** Writes the response's end, with the conversation it ended, unless one is stored already. */
  async ended(id: string, response: Record<string, unknown>, now: number) {
    const entry = await this.stored.entry(id, now);
    if (!entry) return null;
    if (!responseOpen(entry.response)) return entry;
    return this.store(id, entry.conversation, response, now);
  }

  /** Stores an open response's end after `before`, the conversation up to its input. */
  private async store(id: string, before: ChatMessage[], response: Record<string, unknown>, now: number) {
    const conversation = [...before, ...answerMessages(response)] as ChatMessage[];
    await this.stored.save(id, conversation, response, now);
    return { response, conversation };
  }
}
