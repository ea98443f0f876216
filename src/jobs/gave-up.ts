// The one dead letter of background work the jobs queue gave up on (a batch line, a generation):
// its failed deliveries were retried, not dead letters of their own. It keeps the request when the
// tenant keeps them (deadLetters.keepRequests), so it can be run again.
import type { Env } from "../env";
import type { ChatRequest } from "../config/chat-request";
import { readTenantConfig } from "../config/store";
import { recordDeadLetter } from "../observe/dead-letters";

export async function recordGaveUp(
  env: Env,
  letter: { tenant: string; requestId: string; model: string; code: string; message: string; request: ChatRequest | undefined },
): Promise<void> {
  const keep = (await readTenantConfig(env, letter.tenant))?.deadLetters.keepRequests ?? false;
  await recordDeadLetter(env.DB, {
    tenant: letter.tenant,
    requestId: letter.requestId,
    model: letter.model,
    status: 502,
    code: letter.code,
    message: letter.message,
    partial: false,
    attempts: [],
    createdAt: Date.now(),
    traceId: null,
    request: keep ? letter.request : undefined,
  });
}
