import { describe, expect, it } from "vitest";
import { Webhook } from "standardwebhooks";
import { newSigningSecret, signatureHeader } from "./signature";

// Verified by the Standard Webhooks reference library, as a receiver would.
describe("webhook signatures", () => {
  const body = JSON.stringify({ type: "alert.firing", data: { tenant: "acme" } });
  const now = Math.floor(Date.now() / 1000);
  const headers = (signature: string) => ({ "webhook-id": "msg_1", "webhook-timestamp": String(now), "webhook-signature": signature });

  it("signs so that a Standard Webhooks receiver accepts the message, and refuses it altered", async () => {
    const secret = newSigningSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const signature = await signatureHeader([secret], "msg_1", now, body);
    expect(new Webhook(secret).verify(body, headers(signature))).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(body.replace("acme", "evil"), headers(signature))).toThrow();
    expect(() => new Webhook(newSigningSecret()).verify(body, headers(signature))).toThrow();
  });

  it("during a rotation, carries a signature by each secret: receivers on either one accept it", async () => {
    const [current, previous] = [newSigningSecret(), newSigningSecret()];
    const signature = await signatureHeader([current, previous], "msg_1", now, body);
    expect(signature.split(" ")).toHaveLength(2);
    for (const secret of [current, previous]) expect(new Webhook(secret).verify(body, headers(signature))).toEqual(JSON.parse(body));
  });
});
