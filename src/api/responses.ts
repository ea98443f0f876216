// The OpenAI Responses API: POST /v1/responses, GET and DELETE /v1/responses/{id}. A request is
// translated to chat completions (surfaces/responses) after the stored conversation its
// previous_response_id names, and served as any chat request is (answer.ts); its answer, stream
// and events are the Responses API's. With `store` (the default, as OpenAI's) the response and its
// conversation are kept for a later turn (serve/stored-responses.ts).
import { Hono } from "hono";
import type { AppEnv } from "./context";
import { tenantAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import { jsonBody, validJson } from "./validation";
import type { ChatMessage } from "../config/chat-request";
import { conversationOf, ResponsesRequestSchema, type ResponsesRequest, toChatRequest } from "../surfaces/responses/request";
import { answerMessages } from "../surfaces/responses/response";
import { responsesSurface } from "../surfaces/responses/surface";
import { StoredResponses } from "../serve/stored-responses";
import { logError } from "../log";
import { answer, requestPriority, shedWhileFull, tenantBody } from "./answer";

const notFound = (id: string) => errorResponse(404, "response_not_found", `No stored response ${id.slice(0, 80)}.`);
const storeOf = (c: { env: AppEnv["Bindings"]; get: (k: "tenant") => string }) => new StoredResponses(c.env.DB, c.get("tenant"));

export const responsesRoute = new Hono<AppEnv>()
  .use("*", tenantAuth)
  .post("/", shedWhileFull, jsonBody, tenantBody, validJson(ResponsesRequestSchema), async (c) => {
    const request = c.req.valid("json") as ResponsesRequest;
    const priority = requestPriority(c);
    if (priority instanceof Response) return priority;
    const store = storeOf(c);
    let history: ChatMessage[] = [];
    if (request.previous_response_id) {
      const earlier = await store.conversation(request.previous_response_id, Date.now());
      if (!earlier)
        return errorResponse(
          404,
          "previous_response_not_found",
          `Previous response with id '${request.previous_response_id.slice(0, 80)}' not found (never stored, deleted, or expired).`,
        );
      history = earlier;
    }
    const chat = toChatRequest(request, history);
    const id = `resp_${c.get("requestId").replaceAll("-", "")}`;
    // Stored before its end reaches the client, so the client's next turn finds it.
    const keep = async (response: Record<string, unknown>) => {
      if (request.store === false) return;
      const conversation = [...history, ...conversationOf(request), ...answerMessages(response)] as ChatMessage[];
      await store
        .save(id, conversation, response, Date.now())
        .catch((err: unknown) => logError(c.get("requestId"), "response not stored", err));
    };
    const speaks = responsesSurface({ id, createdAt: Math.floor(Date.now() / 1000), request }, keep);
    return answer(c, chat, priority, { surface: "responses", speaks, reconnects: false });
  })
  .get("/:id", async (c) => {
    const response = await storeOf(c).response(c.req.param("id"), Date.now());
    return response ? c.json(response) : notFound(c.req.param("id"));
  })
  .delete("/:id", async (c) => {
    if (!(await storeOf(c).delete(c.req.param("id")))) return notFound(c.req.param("id"));
    return c.json({ id: c.req.param("id"), object: "response", deleted: true });
  });
