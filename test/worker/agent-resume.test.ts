// Agent traffic through breaks (issue 20): tool calls, reasoning and usage, with real sims that
// stream them (sim/agent.ts) and break at a chosen delta (`disconnect_after` counts deltas).
import { beforeEach, describe, expect, it } from "vitest";
import { agentAnswer, agentDeltas } from "../../sim/agent";
import {
  chat,
  createTenant,
  eventually,
  expectError,
  gateStats,
  MESSAGES,
  readSse,
  resetSims,
  resumableConfig,
  simConfig,
  simStats,
  type SimName,
} from "./helpers";

beforeEach(resetSims);

const TOOLS = [
  { type: "function", function: { name: "search", parameters: { type: "object" } } },
  { type: "function", function: { name: "fetch", parameters: { type: "object" } } },
];
const TOOL_NAMES = ["search", "fetch"];

/** Resumable backends a then b, serving `model`. */
async function tenantOn(model = "sim-model", sims: SimName[] = ["a", "b"]) {
  const cfg = resumableConfig(sims);
  return createTenant({ ...cfg, backends: cfg.backends.map((b) => ({ ...b, model })) });
}

/** Conversations whose answer makes at least `calls` tool calls (the sim decides deterministically). */
function messagesWithCalls(calls: number): Array<{ role: string; content: string }> {
  for (let i = 0; ; i++) {
    const messages = [{ role: "user", content: `Look it up, case ${i}.` }];
    if (agentAnswer({ model: "sim-model", messages, tools: TOOL_NAMES }).toolCalls.length >= calls) return messages;
  }
}

const breakOnA = (after: number) => ({ backend: "a", disconnect_after: after });

describe("tool calls through a break", () => {
  it("a break inside a call's arguments carries on exactly when the regenerated answer repeats what was delivered", async () => {
    const { key } = await tenantOn();
    const messages = messagesWithCalls(1);
    const truth = agentAnswer({ model: "sim-model", messages, tools: TOOL_NAMES }).toolCalls;
    const sse = await readSse(await chat(key, { model: "chat", messages, tools: TOOLS, stream: true, sim_fault: breakOnA(3) }));
    expect(sse.error).toBeUndefined();
    expect(sse.done).toBe(true);
    expect(sse.toolCalls).toEqual(truth);
  });

  it("a break inside a call's arguments ends with the error event naming the cut when the regenerated answer differs", async () => {
    // b samples differently (another model): its calls are not the ones the client has.
    const cfg = resumableConfig(["a", "b"]);
    const { key } = await createTenant({ ...cfg, backends: cfg.backends.map((b) => ({ ...b, model: `sim-model-${b.id}` })) });
    const messages = messagesWithCalls(1);
    const answer = agentAnswer({ model: "sim-model-a", messages, tools: TOOL_NAMES });
    const truth = answer.toolCalls;
    // Past the arguments' common start ({"query":"w0x): far enough in that b's call differs from it.
    let seen = 0;
    const cut = agentDeltas(answer).findIndex((d) => {
      const call = (d.tool_calls as Array<{ index: number; function: { arguments: string } }>)[0]!;
      seen += call.index === 0 ? call.function.arguments.length : 0;
      return seen >= 20;
    });
    const res = await chat(key, { model: "chat", messages, tools: TOOLS, stream: true, sim_fault: breakOnA(cut + 1) });
    const sse = await readSse(res);
    expect(sse.done).toBe(false);
    expect(sse.error).toMatchObject({ error: { code: "stream_cut" }, partial: true, cut: "tool_call" });
    expect(sse.toolCalls).toHaveLength(1);
    expect(sse.toolCalls[0]!.name).toBe(truth[0]!.name);
    expect(sse.toolCalls[0]!.arguments.length).toBeGreaterThan(0);
    expect(truth[0]!.arguments.startsWith(sse.toolCalls[0]!.arguments)).toBe(true);
    expect(sse.toolCalls[0]!.arguments).not.toBe(truth[0]!.arguments);
    // b was asked for a fresh answer, never for a continuation of a call.
    expect((await simStats("b")).requests).toBe(1);
  });

  it("a break between two complete calls carries on exactly: the answer is regenerated and checked", async () => {
    const { tenant, key } = await tenantOn();
    const messages = messagesWithCalls(2);
    const answer = agentAnswer({ model: "sim-model", messages, tools: TOOL_NAMES });
    const deltas = agentDeltas(answer);
    // Just after the first call's last fragment.
    const afterFirst = deltas.findIndex((d) => (d.tool_calls as Array<{ index: number }>)[0]!.index === 1);
    const res = await chat(key, { model: "chat", messages, tools: TOOLS, stream: true, sim_fault: breakOnA(afterFirst) });
    const sse = await readSse(res);
    expect(sse.error).toBeUndefined();
    expect(sse.done).toBe(true);
    expect(sse.finishReason).toBe("tool_calls");
    expect(sse.toolCalls).toEqual(answer.toolCalls);
    expect(sse.comments.some((c) => c.startsWith("regenerating backend=b"))).toBe(true);
    await eventually(async () => (await gateStats(tenant)).counters.wastedTokens > 0);
    // Regenerated on b, the backend that generated the prefix again.
    const b = (await gateStats(tenant)).backends.find((x: any) => x.id === "b");
    expect(b.wastedTokens.regenerated).toBe((await gateStats(tenant)).counters.wastedTokens);
  });

  it("a break after the finish reason needs nothing more: the answer is whole", async () => {
    const { key } = await tenantOn(undefined, ["a"]);
    const messages = messagesWithCalls(1);
    const answer = agentAnswer({ model: "sim-model", messages, tools: TOOL_NAMES });
    const sse = await readSse(await chat(key, { model: "chat", messages, tools: TOOLS, stream: true }));
    expect(sse.toolCalls).toEqual(answer.toolCalls);
    expect(sse.finishReason).toBe("tool_calls");
  });

  it("a non-streaming answer assembles the calls as the streaming client would, even after a break", async () => {
    const { key } = await tenantOn();
    const messages = messagesWithCalls(2);
    const answer = agentAnswer({ model: "sim-model", messages, tools: TOOL_NAMES });
    const json: any = await (await chat(key, { model: "chat", messages, tools: TOOLS, sim_fault: breakOnA(4) })).json();
    expect(json.choices[0].finish_reason).toBe("tool_calls");
    expect(json.choices[0].message.content).toBeNull();
    expect(json.choices[0].message.tool_calls).toEqual(
      answer.toolCalls.map((c) => ({ type: "function", id: c.id, function: { name: c.name, arguments: c.arguments } })),
    );
  });

  it("replays a stored tool-call answer event for event", async () => {
    const { key } = await tenantOn();
    const messages = messagesWithCalls(2);
    const body = { model: "chat", messages, tools: TOOLS, stream: true };
    const first = await readSse(await chat(key, body, { "idempotency-key": "k-tools" }));
    const again = await chat(key, body, { "idempotency-key": "k-tools" });
    expect(again.headers.get("x-sluice-replay")).toBe("stored");
    const replay = await readSse(again);
    expect(replay.events.map((e) => e.data)).toEqual(first.events.map((e) => e.data));
    expect(replay.toolCalls).toEqual(first.toolCalls);
  });
});

describe("reasoning through a break", () => {
  const model = "sim-reasoner";
  it("a break inside the reasoning carries on exactly when the regenerated reasoning repeats what was delivered", async () => {
    const { key } = await tenantOn(model);
    const truth = agentAnswer({ model, messages: MESSAGES });
    const sse = await readSse(await chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: breakOnA(3) }));
    expect(sse.error).toBeUndefined();
    expect(sse.reasoning).toBe(truth.reasoning.join(""));
    expect(sse.text).toBe(truth.content.join(""));
    expect(sse.comments.some((c) => c.startsWith("regenerating backend=b"))).toBe(true);
  });

  it("a break inside the reasoning ends with the error event naming the cut when the regenerated reasoning differs", async () => {
    const cfg = resumableConfig(["a", "b"]);
    const { key } = await createTenant({ ...cfg, backends: cfg.backends.map((b) => ({ ...b, model: `${model}-${b.id}` })) });
    const truth = agentAnswer({ model: `${model}-a`, messages: MESSAGES });
    const sse = await readSse(await chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: breakOnA(3) }));
    expect(sse.error).toMatchObject({ partial: true, cut: "reasoning" });
    expect(sse.text).toBe("");
    expect(truth.reasoning.join("").startsWith(sse.reasoning)).toBe(true);
    expect(sse.reasoning.length).toBeGreaterThan(0);
    expect(sse.reasoning).not.toBe(truth.reasoning.join(""));
  });

  it("a break once the answer's text has started resumes the text exactly", async () => {
    const { key } = await tenantOn(model);
    const truth = agentAnswer({ model, messages: MESSAGES });
    const cut = truth.reasoning.length + 3;
    const sse = await readSse(await chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: breakOnA(cut) }));
    expect(sse.error).toBeUndefined();
    expect(sse.reasoning).toBe(truth.reasoning.join(""));
    expect(sse.text).toBe(truth.content.join(""));
    expect(sse.comments.some((c) => c.startsWith("resumed backend=b"))).toBe(true);
  });
});

describe("usage through a break", () => {
  it("reports the original prompt and every completion token the client received, as the uninterrupted run does", async () => {
    const { key } = await tenantOn();
    const body = { model: "chat", messages: MESSAGES, stream: true, stream_options: { include_usage: true } };
    const whole = await readSse(await chat(key, body));
    const resumed = await readSse(await chat(key, { ...body, sim_fault: breakOnA(5) }));
    expect(resumed.comments.some((c) => c.startsWith("resumed backend=b"))).toBe(true);
    expect(resumed.text).toBe(whole.text);
    expect(whole.usage).toBeDefined();
    expect(resumed.usage).toEqual(whole.usage);
  });
});

describe("a non-streaming answer that starts over", () => {
  it("on a backend that cannot continue, starts over: never a splice of two answers, live or replayed", async () => {
    // b serves another model: its answer differs from a's from the first token, as a sampled one would.
    const cfg = simConfig(["a", "b"]);
    const { key } = await createTenant({ ...cfg, backends: cfg.backends.map((b) => ({ ...b, model: `sim-model-${b.id}` })) });
    const body = { model: "chat", messages: MESSAGES, sim_fault: breakOnA(5) };
    const first: any = await (await chat(key, body, { "idempotency-key": "k-restart" })).json();
    const fromB = agentAnswer({ model: "sim-model-b", messages: MESSAGES }).content.join("");
    expect(first.choices[0].message.content).toBe(fromB);
    const again = await chat(key, body, { "idempotency-key": "k-restart" });
    if (again.status === 200) expect(((await again.json()) as any).choices[0].message.content).toBe(fromB);
    else await expectError(again, 409, "replay_unavailable");
  });
});
