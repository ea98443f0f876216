// Dead letters you can act on: run one again, or all that match a filter, as async generations
// (api/generations.ts), and read how a generation went. A letter whose request was not kept
// (deadLetters.keepRequests is false, or it was over 256 KiB) cannot be run again: 409 says so.
import { Hono } from "hono";
import * as z from "zod";
import type { AppEnv } from "./context";
import { errorResponse } from "../stream/errors";
import { jsonBody, validJson } from "./validation";
import { adminBody } from "./admin-config";
import { deadLetterRequest, deadLettersMatching } from "../observe/dead-letters";
import { GenerationStore } from "../jobs/generations";
import { startGeneration } from "./generations";

const RedriveFilterSchema = z.object({
  code: z.string().min(1).max(128).optional(),
  backend: z.string().min(1).max(64).optional(),
  /** Unix ms, inclusive. */
  since: z.number().int().nonnegative().optional(),
  until: z.number().int().nonnegative().optional(),
  limit: z.number().int().min(1).max(100).default(20),
});

const notKept = (id: number) =>
  errorResponse(
    409,
    "request_not_kept",
    `Dead letter ${id} has no request to run again: the tenant keeps none (deadLetters.keepRequests is false), or it was over 256 KiB.`,
  );

export const deadLettersRoute = new Hono<AppEnv>()
  .post("/redrive", jsonBody, adminBody, validJson(RedriveFilterSchema), async (c) => {
    const tenant = c.req.param("tenant")!;
    const filter = c.req.valid("json");
    const letters = await deadLettersMatching(c.env.DB, tenant, filter, filter.limit);
    const data: Array<{ dead_letter_id: number; generation_id: string }> = [];
    const notKeptIds: number[] = [];
    for (const letter of letters) {
      if (!letter.request) {
        notKeptIds.push(letter.id);
        continue;
      }
      const started = await startGeneration(c.env, tenant, letter.request, undefined, true);
      if (started.status !== 202) return started;
      data.push({ dead_letter_id: letter.id, generation_id: ((await started.json()) as { id: string }).id });
    }
    return c.json({ object: "list", data, not_kept: notKeptIds }, 202);
  })
  .post("/:id/redrive", async (c) => {
    const tenant = c.req.param("tenant")!;
    const id = Number(c.req.param("id"));
    if (!Number.isSafeInteger(id) || id < 1)
      return errorResponse(400, "invalid_dead_letter_id", "A dead letter id is the number its listing shows.");
    const request = await deadLetterRequest(c.env.DB, tenant, id);
    if (request === undefined) return errorResponse(404, "dead_letter_not_found", `Tenant "${tenant}" has no dead letter ${id}.`);
    if (request === null) return notKept(id);
    return startGeneration(c.env, tenant, request, undefined, true);
  });

export const adminGenerationsRoute = new Hono<AppEnv>().get("/:id", async (c) => {
  const generation = await new GenerationStore(c.env.DB, c.req.param("tenant")!).get(c.req.param("id"));
  return generation ? c.json(generation) : errorResponse(404, "generation_not_found", `No generation ${c.req.param("id")}.`);
});
