// Anthropic's Messages request, checked (zod) and turned into the chat completions request sluice
// sends its backends. Known fields are mapped exactly; one sluice cannot honour is a 400 naming it
// (never dropped); unknown fields pass through to the backend, as on the chat route.
import * as z from "zod";
import type { ChatRequest } from "../../config/chat-request";

const CacheControl = z.looseObject({ type: z.string() }).optional();

const TextBlock = z.object({ type: z.literal("text"), text: z.string(), cache_control: CacheControl, citations: z.unknown().optional() });
const ImageSource = z.discriminatedUnion("type", [
  z.object({ type: z.literal("base64"), media_type: z.string().min(1).max(100), data: z.string() }),
  z.object({ type: z.literal("url"), url: z.string().min(1).max(8_192) }),
]);
const ImageBlock = z.object({ type: z.literal("image"), source: ImageSource, cache_control: CacheControl });
const ToolUseBlock = z.object({
  type: z.literal("tool_use"),
  id: z.string().min(1).max(256),
  name: z.string().min(1).max(256),
  input: z.record(z.string(), z.unknown()),
  cache_control: CacheControl,
});
const ToolResultBlock = z.object({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1).max(256),
  content: z.union([z.string(), z.array(z.discriminatedUnion("type", [TextBlock, ImageBlock]))]).optional(),
  is_error: z.boolean().optional(),
  cache_control: CacheControl,
});
/** Thinking from an earlier turn: the backend cannot take it back, so it is left out (docs/client-api.md lists it). */
const ThinkingBlock = z.object({ type: z.literal("thinking"), thinking: z.string(), signature: z.string().optional() });
const RedactedThinkingBlock = z.object({ type: z.literal("redacted_thinking"), data: z.string() });

const Block = z.discriminatedUnion("type", [TextBlock, ImageBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock, RedactedThinkingBlock]);
type Block = z.output<typeof Block>;

const Message = z.object({
  role: z.enum(["user", "assistant"]),
  content: z.union([z.string(), z.array(Block).max(10_000)]),
});

const Tool = z.looseObject({
  name: z.string().min(1).max(256),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()).optional(),
  type: z.string().optional(),
  cache_control: CacheControl,
});

const ToolChoice = z.discriminatedUnion("type", [
  z.object({ type: z.literal("auto"), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal("any"), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal("tool"), name: z.string().min(1), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal("none") }),
]);

const Thinking = z.discriminatedUnion("type", [
  z.object({ type: z.literal("enabled"), budget_tokens: z.number().int().positive() }),
  z.object({ type: z.literal("disabled") }),
]);

/** Fields of Anthropic's API sluice cannot honour against a chat completions backend. */
const UNSUPPORTED = ["container", "mcp_servers", "context_management"] as const;
/** Fields sluice accepts and leaves out (docs/client-api.md says so): they change nothing a backend does here. */
const IGNORED = ["service_tier"] as const;

export const MessagesRequestSchema = z
  .looseObject({
    model: z.string().min(1, "model is required").max(256),
    max_tokens: z.number({ error: "max_tokens is required" }).int().positive().max(1_000_000),
    messages: z.array(Message).min(1, "messages must hold at least one message").max(10_000),
    system: z.union([z.string(), z.array(TextBlock)]).optional(),
    tools: z.array(Tool).max(512).optional(),
    tool_choice: ToolChoice.optional(),
    stop_sequences: z.array(z.string().max(1_000)).max(16).optional(),
    temperature: z.number().min(0).max(1).optional(),
    top_p: z.number().min(0).max(1).optional(),
    top_k: z.number().int().positive().optional(),
    metadata: z.object({ user_id: z.string().max(512).nullable().optional() }).optional(),
    thinking: Thinking.optional(),
    stream: z.boolean().optional(),
  })
  .superRefine((req, ctx) => {
    for (const field of UNSUPPORTED)
      if (field in req)
        ctx.addIssue({ code: "custom", path: [field], message: `${field} is not supported: sluice's backends speak chat completions` });
    req.tools?.forEach((tool, i) => {
      if (tool.type !== undefined && tool.type !== "custom")
        ctx.addIssue({
          code: "custom",
          path: ["tools", i, "type"],
          message: `the server tool "${tool.type}" (${tool.name}) is not supported: only client tools with an input_schema are`,
        });
      else if (tool.input_schema === undefined)
        ctx.addIssue({ code: "custom", path: ["tools", i, "input_schema"], message: "input_schema is required" });
    });
  });

export type MessagesRequest = z.output<typeof MessagesRequestSchema>;

type ChatMessage = ChatRequest["messages"][number];

const KNOWN = new Set([...Object.keys(MessagesRequestSchema.shape), ...IGNORED]);

/** The chat completions request for `req`: messages, tools and sampling mapped; unknown fields passed through. */
export function toChatRequest(req: MessagesRequest): ChatRequest {
  const passThrough = Object.fromEntries(Object.entries(req).filter(([k]) => !KNOWN.has(k)));
  const messages: ChatMessage[] = [];
  const system = typeof req.system === "string" ? req.system : req.system?.map((b) => b.text).join("\n");
  if (system) messages.push({ role: "system", content: system });
  for (const m of req.messages) messages.push(...chatMessages(m.role, m.content));
  const out: ChatRequest = { ...passThrough, model: req.model, messages, max_tokens: req.max_tokens };
  if (req.stream) Object.assign(out, { stream: true, stream_options: { include_usage: true } });
  if (req.temperature !== undefined) out.temperature = req.temperature;
  if (req.top_p !== undefined) out.top_p = req.top_p;
  if (req.top_k !== undefined) out.top_k = req.top_k;
  if (req.stop_sequences?.length) out.stop = req.stop_sequences;
  if (req.metadata?.user_id) out.user = req.metadata.user_id;
  if (req.tools?.length)
    out.tools = req.tools.map((t) => ({
      type: "function",
      function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.input_schema },
    }));
  if (req.tool_choice) {
    const choice = req.tool_choice;
    out.tool_choice =
      choice.type === "auto"
        ? "auto"
        : choice.type === "any"
          ? "required"
          : choice.type === "none"
            ? "none"
            : { type: "function", function: { name: choice.name } };
    if (choice.type !== "none" && choice.disable_parallel_tool_use) out.parallel_tool_calls = false;
  }
  // The backend's own switch for reasoning, as vLLM and SGLang take it for reasoning models.
  if (req.thinking) out.chat_template_kwargs = { enable_thinking: req.thinking.type === "enabled" };
  return out;
}

/** One Anthropic message as chat messages: tool results become `tool` messages, tool uses `tool_calls`. */
function chatMessages(role: "user" | "assistant", content: string | Block[]): ChatMessage[] {
  if (typeof content === "string") return [{ role, content }];
  const out: ChatMessage[] = [];
  const parts: Array<Record<string, unknown>> = [];
  const calls: Array<Record<string, unknown>> = [];
  const flush = () => {
    if (parts.length === 0 && calls.length === 0) return;
    const text = parts.every((p) => p.type === "text") ? parts.map((p) => p.text).join("") : undefined;
    const message: Record<string, unknown> = { role, content: text ?? (parts.length ? [...parts] : null) };
    if (calls.length) message.tool_calls = [...calls];
    out.push(message as ChatMessage);
    parts.length = 0;
    calls.length = 0;
  };
  for (const block of content) {
    if (block.type === "text") parts.push({ type: "text", text: block.text });
    else if (block.type === "image") parts.push(imagePart(block.source));
    else if (block.type === "tool_use")
      calls.push({ id: block.id, type: "function", function: { name: block.name, arguments: JSON.stringify(block.input) } });
    else if (block.type === "tool_result") {
      flush();
      out.push({ role: "tool", tool_call_id: block.tool_use_id, content: toolResultText(block) } as ChatMessage);
    }
    // thinking and redacted_thinking: an earlier turn's reasoning, which a chat backend takes no part of.
  }
  flush();
  return out;
}

function imagePart(source: z.output<typeof ImageSource>): Record<string, unknown> {
  const url = source.type === "url" ? source.url : `data:${source.media_type};base64,${source.data}`;
  return { type: "image_url", image_url: { url } };
}

/** A tool result as the text a `tool` message carries; an error result says so, as chat has no flag for it. */
function toolResultText(block: z.output<typeof ToolResultBlock>): string {
  const text =
    typeof block.content === "string"
      ? block.content
      : (block.content ?? []).map((b) => (b.type === "text" ? b.text : "[image]")).join("\n");
  return block.is_error ? `Error: ${text}` : text;
}
