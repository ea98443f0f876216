// OpenAI's Responses request, checked (zod) and turned into the chat completions request sluice
// sends its backends. `input` (a string, or items: messages, function calls and their outputs) after
// the stored conversation of `previous_response_id` and `instructions` as the system message.
// A field sluice cannot honour is a 400 naming it; unknown fields pass through, as on the chat route.
import * as z from "zod";
import type { ChatMessage, ChatRequest } from "../../config/chat-request";

const InputText = z.object({ type: z.literal("input_text"), text: z.string() });
const InputImage = z.object({
  type: z.literal("input_image"),
  image_url: z.string().max(20_000_000).optional(),
  file_id: z.string().optional(),
  detail: z.enum(["low", "high", "auto"]).optional(),
});
const OutputText = z.object({ type: z.literal("output_text"), text: z.string(), annotations: z.array(z.unknown()).optional() });
const Refusal = z.object({ type: z.literal("refusal"), refusal: z.string() });
const Part = z.discriminatedUnion("type", [InputText, InputImage, OutputText, Refusal]);

const MessageItem = z.object({
  type: z.literal("message").optional(),
  id: z.string().optional(),
  status: z.string().optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([z.string(), z.array(Part)]),
});
const FunctionCallItem = z.object({
  type: z.literal("function_call"),
  id: z.string().optional(),
  call_id: z.string().min(1).max(256),
  name: z.string().min(1).max(256),
  arguments: z.string(),
  status: z.string().optional(),
});
const FunctionCallOutputItem = z.object({
  type: z.literal("function_call_output"),
  id: z.string().optional(),
  call_id: z.string().min(1).max(256),
  output: z.union([z.string(), z.array(Part)]),
  status: z.string().optional(),
});
/** An earlier turn's reasoning: a chat backend takes none back, so it is left out (docs/client-api.md). */
const ReasoningItem = z.looseObject({ type: z.literal("reasoning") });

const Item = z.union([FunctionCallItem, FunctionCallOutputItem, ReasoningItem, MessageItem]);
type Item = z.output<typeof Item>;

const FunctionTool = z.object({
  type: z.literal("function"),
  name: z.string().min(1).max(256),
  description: z.string().nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  strict: z.boolean().nullable().optional(),
});

const TextFormat = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({
    type: z.literal("json_schema"),
    name: z.string().min(1).max(256),
    schema: z.record(z.string(), z.unknown()),
    description: z.string().optional(),
    strict: z.boolean().nullable().optional(),
  }),
]);

/** Fields of OpenAI's API sluice cannot honour against a chat completions backend (yet). */
const UNSUPPORTED: Record<string, string> = {
  conversation: "conversations are not supported: continue with previous_response_id",
  prompt: "stored prompts are not supported",
};
/** Fields accepted and left out (docs/client-api.md says so). */
const IGNORED = ["include", "service_tier", "truncation", "safety_identifier", "prompt_cache_key", "stream_options"] as const;

export const ResponsesRequestSchema = z
  .looseObject({
    model: z.string().min(1, "model is required").max(256),
    input: z.union([z.string(), z.array(Item).max(10_000)]),
    instructions: z.string().nullable().optional(),
    previous_response_id: z.string().min(1).max(256).nullable().optional(),
    store: z.boolean().nullable().optional(),
    background: z.boolean().nullable().optional(),
    stream: z.boolean().nullable().optional(),
    tools: z
      .array(z.looseObject({ type: z.string() }))
      .max(512)
      .optional(),
    tool_choice: z
      .union([z.enum(["auto", "none", "required"]), z.object({ type: z.literal("function"), name: z.string().min(1) })])
      .optional(),
    parallel_tool_calls: z.boolean().nullable().optional(),
    max_output_tokens: z.number().int().positive().max(1_000_000).nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
    text: z.object({ format: TextFormat.optional(), verbosity: z.string().optional() }).optional(),
    reasoning: z
      .object({ effort: z.enum(["minimal", "low", "medium", "high"]).nullable().optional(), summary: z.string().nullable().optional() })
      .optional(),
    metadata: z.record(z.string().max(64), z.string().max(512)).nullable().optional(),
    user: z.string().max(512).optional(),
  })
  .superRefine((req, ctx) => {
    if (req.background && req.store === false)
      ctx.addIssue({ code: "custom", path: ["background"], message: "a background response is stored: it cannot have store: false" });
    for (const [field, why] of Object.entries(UNSUPPORTED))
      if (field in req && req[field] !== undefined && req[field] !== null && req[field] !== false)
        ctx.addIssue({ code: "custom", path: [field], message: `${field} is not supported: ${why}` });
    if (Array.isArray(req.input))
      req.input.forEach((item, i) => {
        const parts = "content" in item && Array.isArray(item.content) ? item.content : [];
        parts.forEach((p: { type: string; image_url?: string }, j: number) => {
          if (p.type === "input_image" && !p.image_url)
            ctx.addIssue({
              code: "custom",
              path: ["input", i, "content", j, "image_url"],
              message: "an image is given by image_url (a URL or a data: URL); file_id is not supported",
            });
        });
      });
    req.tools?.forEach((tool, i) => {
      if (tool.type !== "function") {
        ctx.addIssue({
          code: "custom",
          path: ["tools", i, "type"],
          message: `the built-in tool "${tool.type}" is not supported: only function tools are`,
        });
        return;
      }
      const parsed = FunctionTool.safeParse(tool);
      if (!parsed.success)
        ctx.addIssue({ code: "custom", path: ["tools", i], message: "a function tool needs a name (and parameters, a JSON Schema)" });
    });
  });

export type ResponsesRequest = z.output<typeof ResponsesRequestSchema>;

const KNOWN = new Set([...Object.keys(ResponsesRequestSchema.shape), ...IGNORED]);

/** The request's conversation as chat messages (no instructions): what a later previous_response_id continues. */
export function conversationOf(req: ResponsesRequest): ChatMessage[] {
  if (typeof req.input === "string") return [{ role: "user", content: req.input }];
  const out: ChatMessage[] = [];
  let calls: Array<Record<string, unknown>> | undefined;
  for (const item of req.input as Item[]) {
    if (item.type === "function_call") {
      const call = { id: item.call_id, type: "function", function: { name: item.name, arguments: item.arguments } };
      // Calls in a row are one assistant turn's parallel calls.
      if (calls) calls.push(call);
      else out.push({ role: "assistant", content: null, tool_calls: (calls = [call]) } as ChatMessage);
      continue;
    }
    calls = undefined;
    if (item.type === "function_call_output")
      out.push({
        role: "tool",
        tool_call_id: item.call_id,
        content: typeof item.output === "string" ? item.output : partsText(item.output),
      } as ChatMessage);
    else if (item.type === "reasoning") continue;
    else out.push(messageOf(item as z.output<typeof MessageItem>));
  }
  return out;
}

/** The chat completions request: instructions, then `history` (previous_response_id's), then this input. */
export function toChatRequest(req: ResponsesRequest, history: ChatMessage[]): ChatRequest {
  const passThrough = Object.fromEntries(Object.entries(req).filter(([k]) => !KNOWN.has(k)));
  const messages: ChatMessage[] = [];
  if (req.instructions) messages.push({ role: "system", content: req.instructions });
  messages.push(...history, ...conversationOf(req));
  const out: ChatRequest = { ...passThrough, model: req.model, messages };
  if (req.stream) Object.assign(out, { stream: true, stream_options: { include_usage: true } });
  if (req.max_output_tokens != null) out.max_tokens = req.max_output_tokens;
  if (req.temperature != null) out.temperature = req.temperature;
  if (req.top_p != null) out.top_p = req.top_p;
  if (req.user) out.user = req.user;
  if (req.parallel_tool_calls != null) out.parallel_tool_calls = req.parallel_tool_calls;
  if (req.tools?.length)
    out.tools = req.tools.map((t) => {
      const f = FunctionTool.parse(t);
      return {
        type: "function",
        function: {
          name: f.name,
          ...(f.description ? { description: f.description } : {}),
          ...(f.parameters ? { parameters: f.parameters } : {}),
          ...(f.strict != null ? { strict: f.strict } : {}),
        },
      };
    });
  if (req.tool_choice)
    out.tool_choice =
      typeof req.tool_choice === "string" ? req.tool_choice : { type: "function", function: { name: req.tool_choice.name } };
  const format = req.text?.format;
  if (format?.type === "json_object") out.response_format = { type: "json_object" };
  if (format?.type === "json_schema")
    out.response_format = {
      type: "json_schema",
      json_schema: { name: format.name, schema: format.schema, ...(format.strict != null ? { strict: format.strict } : {}) },
    };
  if (req.reasoning?.effort) out.reasoning_effort = req.reasoning.effort;
  return out;
}

function messageOf(item: z.output<typeof MessageItem>): ChatMessage {
  const role = item.role === "developer" ? "system" : item.role;
  if (typeof item.content === "string") return { role, content: item.content };
  const parts = item.content;
  // Text only (an assistant's output_text, a user's input_text): one string, as chat backends take best.
  if (parts.every((p) => p.type !== "input_image")) return { role, content: partsText(parts) };
  return {
    role,
    content: parts.map((p) =>
      p.type === "input_image"
        ? { type: "image_url", image_url: { url: p.image_url ?? "", ...(p.detail ? { detail: p.detail } : {}) } }
        : { type: "text", text: textOf(p) },
    ),
  };
}

const textOf = (p: z.output<typeof Part>) => (p.type === "refusal" ? p.refusal : p.type === "input_image" ? "[image]" : p.text);
const partsText = (parts: Array<z.output<typeof Part>>) => parts.map(textOf).join("");
