import { beforeEach, describe, expect, it } from "vitest";
import { chat, createTenant, expectedText, MESSAGES, readSse, resetSims, simConfig } from "./helpers";

beforeEach(resetSims);

describe("smoke", () => {
  it("streams a completion from a sim", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES, stream: true });
    expect(res.status).toBe(200);
    const sse = await readSse(res);
    expect(sse.done).toBe(true);
    expect(sse.text).toBe(expectedText());
  });
  it("answers JSON", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES });
    expect(res.status).toBe(200);
    const body: any = await res.json();
    expect(body.choices[0].message.content).toBe(expectedText());
  });
});
