// The OpenAI Responses API: POST /v1/responses, GET and DELETE /v1/responses/{id}, and
// POST /v1/responses/{id}/cancel. A request is translated to chat completions (surfaces/responses)
// after the stored conversation its previous_response_id names, and served as any chat request is
// (answer.ts); its answer, stream and events are the Responses API's. With `store` (the default, as
// OpenAI's) the response and its conversation are kept for a later turn (serve/stored-responses.ts).
// With `background` it runs as an async generation under the response's id
// (jobs/background-responses.ts): polled with GET, streamed and re-attached with
// `GET ?stream=true&starting_after=N`, cancelled with POST .../cancel.
import { Hono } from "hono";
import type { Context } from "hono";
import type { AppEnv } from "./context";
import { tenantAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import { jsonBody, validJson } from "./validation";
import type { ChatMessage } from "../config/chat-request";
import { conversationOf, ResponsesRequestSchema, type ResponsesRequest, toChatRequest } from "../surfaces/responses/request";
import { answerMessages, inState, responseShell } from "../surfaces/responses/response";
import { responsesSurface } from "../surfaces/responses/surface";
import { endedStream } from "../surfaces/responses/stream";
import { StoredResponses } from "../serve/stored-responses";
import { BackgroundResponses, responseOpen } from "../jobs/background-responses";
import { GenerationStore, generationEnded } from "../jobs/generations";
import { logError } from "../log";
import { answer, requestPriority, shedWhileFull, tenantBody } from "./answer";
import { cancelGeneration, journalKeeps, queueGeneration, reattach } from "./generations";

const notFound = (id: string) => errorResponse(404, "response_not_found", `No stored response ${id.slice(0, 80)}.`);
const storeOf = (c: Context<AppEnv>) => new StoredResponses(c.env.DB, c.get("tenant"));
const backgroundOf = (c: Context<AppEnv>) => new BackgroundResponses(c.env.DB, c.get("tenant"));
const sse = (text: string) => new Response(text, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });

export const responsesRoute = new Hono<AppEnv>()
  .use("*", tenantAuth)
  .post("/", shedWhileFull, jsonBody, tenantBody, validJson(ResponsesRequestSchema), async (c) => {
    const request = c.req.valid("json") as ResponsesRequest;
    const priority = requestPriority(c);
    if (priority instanceof Response) return priority;
    let history: ChatMessage[] = [];
    if (request.previous_response_id) {
      const earlier = await backgroundOf(c).current(request.previous_response_id, Date.now());
      const named = request.previous_response_id.slice(0, 80);
      if (!earlier)
        return errorResponse(
          404,
          "previous_response_not_found",
          `Previous response with id '${named}' not found (never stored, deleted, or expired).`,
        );
      if (responseOpen(earlier.response))
        return errorResponse(400, "previous_response_in_progress", `Previous response '${named}' has not finished; wait for it to end.`);
      history = earlier.conversation;
    }
    const id = `resp_${c.get("requestId").replaceAll("-", "")}`;
    const shell = responseShell({ id, createdAt: Math.floor(Date.now() / 1000), request });
    if (request.background) return startInBackground(c, request, history, shell);
    // Stored before its end reaches the client, so the client's next turn finds it.
    const keep = async (response: Record<string, unknown>) => {
      if (request.store === false) return;
      const conversation = [...history, ...conversationOf(request), ...answerMessages(response)] as ChatMessage[];
      await storeOf(c)
        .save(id, conversation, response, Date.now())
        .catch((err: unknown) => logError(c.get("requestId"), "response not stored", err));
    };
    return answer(c, toChatRequest(request, history), priority, {
      surface: "responses",
      speaks: responsesSurface(shell, keep),
      reconnects: false,
    });
  })
  .get("/:id", async (c) => {
    const id = c.req.param("id");
    const found = await backgroundOf(c).current(id, Date.now());
    if (!found) return notFound(id);
    if (c.req.query("stream") !== "true") return c.json(found.response);
    return streamAgain(c, found.response);
  })
  .post("/:id/cancel", async (c) => {
    const id = c.req.param("id");
    const background = backgroundOf(c);
    const found = await background.current(id, Date.now());
    if (!found) return notFound(id);
    const { response } = found;
    if (response.background !== true)
      return errorResponse(400, "response_not_cancellable", "Only a response created with background: true can be cancelled.");
    if (response.status === "cancelled") return c.json(response);
    if (!responseOpen(response))
      return errorResponse(409, "response_ended", `Response ${id} already ended (${String(response.status)}); it cannot be cancelled.`);
    await cancelGeneration(c.env, c.get("tenant"), c.get("config").limits.shards, id);
    return c.json((await background.current(id, Date.now()))!.response);
  })
  .delete("/:id", async (c) => {
    const id = c.req.param("id");
    // A background response still running is cancelled first: nothing runs for a response that is gone.
    const found = await backgroundOf(c).current(id, Date.now());
    if (found && responseOpen(found.response)) await cancelGeneration(c.env, c.get("tenant"), c.get("config").limits.shards, id);
    if (!(await storeOf(c).delete(id))) return notFound(id);
    return c.json({ id, object: "response", deleted: true });
  });

/**
 * `background: true`: the response is stored as queued with the conversation so far, and runs as
 * an async generation under its id. Answered at once (the queued response), or streamed live.
 */
async function startInBackground(
  c: Context<AppEnv>,
  request: ResponsesRequest,
  history: ChatMessage[],
  shell: ReturnType<typeof responseShell>,
): Promise<Response> {
  const { id } = shell;
  const stored = storeOf(c);
  if (!(await stored.save(id, [...history, ...conversationOf(request)], shell, Date.now())))
    return errorResponse(400, "response_too_large", "This background response's conversation is too large to store (1 MiB).");
  const chat = toChatRequest({ ...request, stream: false }, history);
  const generation = await queueGeneration(c.env, c.get("tenant"), chat, { id });
  if (generation instanceof Response) {
    await stored.delete(id);
    return generation;
  }
  if (!request.stream) return c.json(shell);
  return reattach(c, id, chat, 0, { name: "responses", speaks: backgroundSurface(c, shell), usage: true });
}

/** A background response's stream: its end is stored (once) before it reaches the client. */
function backgroundSurface(c: Context<AppEnv>, shell: Record<string, unknown> & { id: string }, after?: number) {
  const keep = async (response: Record<string, unknown>) => {
    await backgroundOf(c)
      .ended(shell.id, response, Date.now())
      .catch((err: unknown) => logError(c.get("requestId"), "response not stored", err));
  };
  return responsesSurface(shell, keep, after);
}

/**
 * `GET /v1/responses/{id}?stream=true[&starting_after=N]`: a background response's stream again,
 * live while it runs, from its journal while kept (the same events, so starting_after holds);
 * after that only its end is left.
 */
async function streamAgain(c: Context<AppEnv>, response: Record<string, unknown>): Promise<Response> {
  const id = String(response.id);
  if (response.background !== true)
    return errorResponse(400, "response_not_streamable", "Only a response created with background: true can be streamed again.");
  const startingAfter = c.req.query("starting_after");
  if (startingAfter !== undefined && !/^\d{1,9}$/.test(startingAfter))
    return errorResponse(400, "invalid_starting_after", "starting_after must be an event's sequence_number.");
  const after = startingAfter === undefined ? undefined : Number(startingAfter);
  const found = await new GenerationStore(c.env.DB, c.get("tenant")).withRequest(id);
  const shell = { ...inState(response, "queued", []), id };
  if (found && !generationEnded(found.generation))
    return reattach(c, id, found.request, 0, { name: "responses", speaks: backgroundSurface(c, shell, after), usage: true });
  if (found && found.generation.status === "completed" && (await journalKeeps(c, id, found.request)))
    return reattach(c, id, found.request, 0, { name: "responses", speaks: backgroundSurface(c, shell, after), usage: true });
  if (after !== undefined)
    return errorResponse(
      409,
      "replay_unavailable",
      `Response ${id} ended and its events are no longer kept; GET /v1/responses/${id} has it.`,
    );
  return sse(endedStream(response));
}
