// A batch input file (OpenAI's JSONL): one request per line, each
// {"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}. Checked line by line
// when the file is uploaded, so a batch never starts on a file it cannot run; each line's byte range
// is kept, so a queue consumer reads just its line from R2. Pure.
import * as z from "zod";
import { ChatRequestSchema } from "../config/chat-request";
import { EmbeddingsRequestSchema } from "../config/embeddings-request";
import { ResponsesRequestSchema } from "../surfaces/responses/request";
import { describeIssues } from "../config/schema";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../config/json-depth";

/** Lines per file at most (OpenAI's batches take up to 50,000; sluice's are smaller). */
export const MAX_BATCH_LINES = 10_000;
/** Bytes per file at most. */
export const MAX_FILE_BYTES = 20 * 1024 * 1024;

/** The endpoints a batch runs, as OpenAI's batch API names them; every line of a file uses one. */
export const BATCH_ENDPOINTS = ["/v1/chat/completions", "/v1/responses", "/v1/embeddings"] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

/** A line's answer is stored whole: no streams; a line stands alone: no earlier stored response. */
const NoStream = (b: { stream?: boolean | null }) => b.stream !== true;
const Line = <U extends BatchEndpoint, B extends z.ZodType>(url: U, body: B) =>
  z.object({
    custom_id: z.string().min(1, "custom_id is required").max(512),
    method: z.literal("POST", 'method must be "POST"'),
    url: z.literal(url),
    body,
  });

const BatchLineSchema = z.discriminatedUnion(
  "url",
  [
    Line("/v1/chat/completions", ChatRequestSchema.refine(NoStream, "body.stream must not be true: a batch line's answer is stored whole")),
    Line(
      "/v1/responses",
      ResponsesRequestSchema.refine(NoStream, "body.stream must not be true: a batch line's answer is stored whole").refine(
        (b) => !b.previous_response_id,
        "body.previous_response_id is not supported in a batch: a line stands alone",
      ),
    ),
    Line("/v1/embeddings", EmbeddingsRequestSchema),
  ],
  { error: `url must be one of ${BATCH_ENDPOINTS.join(", ")}` },
);

export type BatchLine = z.output<typeof BatchLineSchema>;

/** Where each line lies in the file: [byte offset, byte length], and its custom_id. */
export interface LineIndex {
  offsets: Array<[number, number]>;
  customIds: string[];
  /** The url every line uses (absent in indexes made before batches ran other endpoints: chat). */
  endpoint?: BatchEndpoint;
}

export type ParsedInput = ({ ok: true } & LineIndex) | { ok: false; message: string };

/** Checks every line of `bytes`; the first bad one is named (1-based) with what is wrong with it. */
export function parseBatchInput(bytes: Uint8Array): ParsedInput {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  const offsets: LineIndex["offsets"] = [];
  const customIds: string[] = [];
  const seen = new Set<string>();
  let endpoint: BatchEndpoint | undefined;
  let start = 0;
  let lineNo = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const length = end - start;
    lineNo++;
    const fail = (why: string): ParsedInput => ({ ok: false, message: `line ${lineNo}: ${why}` });
    let text: string;
    try {
      text = decoder.decode(bytes.subarray(start, end));
    } catch {
      return fail("is not UTF-8");
    }
    if (text.trim() !== "") {
      if (offsets.length >= MAX_BATCH_LINES) return fail(`a batch file holds at most ${MAX_BATCH_LINES} lines`);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return fail("is not JSON");
      }
      if (nestsDeeperThan(json, MAX_JSON_DEPTH)) return fail(`nests objects or arrays more than ${MAX_JSON_DEPTH} deep`);
      const parsed = BatchLineSchema.safeParse(json);
      if (!parsed.success) return fail(describeIssues(parsed.error));
      if (seen.has(parsed.data.custom_id)) return fail(`custom_id "${parsed.data.custom_id}" is used by an earlier line`);
      if (endpoint !== undefined && parsed.data.url !== endpoint)
        return fail(`url is ${parsed.data.url}, where the lines before use ${endpoint}: a batch runs one endpoint`);
      endpoint = parsed.data.url;
      seen.add(parsed.data.custom_id);
      customIds.push(parsed.data.custom_id);
      offsets.push([start, length]);
    }
    start = end + 1;
  }
  if (offsets.length === 0) return { ok: false, message: "the file holds no request" };
  return { ok: true, offsets, customIds, endpoint };
}

/** One line of a file already checked at upload. */
export function parseBatchLine(text: string): BatchLine {
  return BatchLineSchema.parse(JSON.parse(text));
}
