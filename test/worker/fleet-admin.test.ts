// The admin API over all tenants: listing them, and one Prometheus scrape of every tenant's gates.
// Its own file: these tests count the tenants in KV, which other files' tests add to.
import { env, SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { ADMIN, chat, createTenant, expectError, MESSAGES, resetSims, simConfig } from "./helpers";
import { MAX_SCRAPE_GATES, MAX_SCRAPE_TENANTS } from "../../src/api/metrics";
import { fnv1a } from "../../src/hash";

beforeEach(resetSims);

const admin = (path: string) => SELF.fetch(`https://sluice.test/admin${path}`, { headers: ADMIN });

async function listAll(limit: number): Promise<{ tenants: string[]; pages: number }> {
  const tenants: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await admin(`/tenants?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(res.status).toBe(200);
    const page: any = await res.json();
    expect(page.object).toBe("list");
    tenants.push(...page.data.map((d: { tenant: string }) => d.tenant));
    cursor = page.next_cursor;
    pages++;
  } while (cursor);
  return { tenants, pages };
}

/** Every sample line of a family, by its labels. */
function samples(text: string, family: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = new RegExp(`^${family}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (match) found.set(match[1] ?? "", Number(match[2]));
  }
  return found;
}

describe("GET /admin/tenants", () => {
  it("lists every tenant, page by page, and forgets deleted ones", async () => {
    const a = await createTenant(simConfig(["a"]), "list-a");
    const b = await createTenant(simConfig(["a"]), "list-b");
    const c = await createTenant(simConfig(["a"]), "list-c");
    const paged = await listAll(1);
    expect(paged.tenants).toEqual(expect.arrayContaining([a.tenant, b.tenant, c.tenant]));
    expect(paged.pages).toBeGreaterThanOrEqual(3);
    // In KV's key order, each once.
    expect(paged.tenants).toEqual([...new Set(paged.tenants)].sort());
    expect((await listAll(1000)).tenants).toEqual(paged.tenants);

    expect((await SELF.fetch(`https://sluice.test/admin/tenants/${b.tenant}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
    expect((await listAll(1000)).tenants).not.toContain(b.tenant);
  });

  // A cursor KV did not hand out is refused by KV on Cloudflare; Miniflare reads any string as one.
  it("answers 400 for a bad limit, and 401 without the admin token", async () => {
    await expectError(await admin("/tenants?limit=0"), 400, "invalid_limit");
    await expectError(await admin("/tenants?limit=1001"), 400, "invalid_limit");
    await expectError(await admin("/tenants?limit=abc"), 400, "invalid_limit");
    await expectError(await SELF.fetch("https://sluice.test/admin/tenants"), 401, "missing_admin_token");
  });
});

describe("GET /admin/metrics", () => {
  it("scrapes every tenant in one exposition, each family declared once, sharded tenants added up", async () => {
    const one = await createTenant(simConfig(["a"]), "scrape-one");
    const sharded = await createTenant(simConfig(["a", "b"], { limits: { shards: 3 } }), "scrape-sharded");
    await (await chat(one.key, { model: "chat", messages: MESSAGES })).arrayBuffer();
    for (let i = 0; i < 4; i++) await (await chat(sharded.key, { model: "chat", messages: MESSAGES })).arrayBuffer();

    const res = await admin("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    const completed = samples(text, "sluice_completed_total");
    expect(completed.get(`{tenant="${one.tenant}"}`)).toBe(1);
    expect(completed.get(`{tenant="${sharded.tenant}"}`)).toBe(4);
    expect(samples(text, "sluice_tenant_up").get(`{tenant="${one.tenant}"}`)).toBe(1);
    expect(samples(text, "sluice_tenant_up").get(`{tenant="${sharded.tenant}"}`)).toBe(1);
    expect(samples(text, "sluice_backend_attempts_total").get(`{tenant="${sharded.tenant}",backend="b",region="eu-west"}`)).toBe(0); // pinned order: a served all
    // Latency histograms, the sharded tenant's gates added up: cumulative buckets, +Inf = count.
    const durations = samples(text, "sluice_request_duration_seconds_count");
    expect(durations.get(`{tenant="${one.tenant}"}`)).toBe(1);
    expect(durations.get(`{tenant="${sharded.tenant}"}`)).toBe(4);
    expect(samples(text, "sluice_request_duration_seconds_sum").get(`{tenant="${sharded.tenant}"}`)).toBeGreaterThan(0);
    const buckets = [...samples(text, "sluice_request_duration_seconds_bucket")].filter(([labels]) =>
      labels.includes(`tenant="${sharded.tenant}"`),
    );
    expect(buckets.at(-1)).toEqual([`{tenant="${sharded.tenant}",le="+Inf"}`, 4]);
    expect(buckets.map(([, n]) => n)).toEqual(buckets.map(([, n]) => n).sort((x, y) => x - y));
    expect(samples(text, "sluice_backend_ttft_seconds_count").get(`{tenant="${sharded.tenant}",backend="a",region="us-east"}`)).toBe(4);

    // Prometheus rejects a family declared twice, or samples away from their declaration.
    const types = text.split("\n").filter((l) => l.startsWith("# TYPE "));
    expect(new Set(types).size).toBe(types.length);
    let family = "";
    const seen = new Set<string>();
    for (const line of text.split("\n").filter(Boolean)) {
      const declared = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
      if (declared) {
        family = declared[1]!;
        expect(seen.has(family)).toBe(false);
        seen.add(family);
      } else if (!line.startsWith("# HELP ")) expect(line, family).toMatch(new RegExp(`^${family}(_bucket|_sum|_count)?[{ ]`));
    }
  });

  it("splits a fleet's scrape with part=k/n: every tenant in exactly one part", async () => {
    await createTenant(simConfig(["a"]), "part-x");
    await createTenant(simConfig(["a"]), "part-y");
    const { tenants } = await listAll(1000);
    const whole = [...samples(await (await admin("/metrics")).text(), "sluice_tenant_up").keys()].sort();
    expect(whole).toEqual(tenants.map((t) => `{tenant="${t}"}`).sort());
    const parts = await Promise.all(
      [1, 2, 3].map(async (k) => [...samples(await (await admin(`/metrics?part=${k}/3`)).text(), "sluice_tenant_up").keys()]),
    );
    expect(parts.flat().sort()).toEqual(whole);
    for (const [i, part] of parts.entries()) for (const labels of part) expect(fnv1a(/"(.*)"/.exec(labels)![1]!) % 3).toBe(i);
  });

  it("answers 400 for a bad part, and 401 without the admin token", async () => {
    for (const part of ["0/3", "4/3", "1/0", "1/65", "a/b", "1"])
      await expectError(await admin(`/metrics?part=${part}`), 400, "invalid_part", /k\/n/);
    await expectError(await SELF.fetch("https://sluice.test/admin/metrics"), 401, "missing_admin_token");
  });

  it("refuses a scrape over its limits with 422, naming the way to split it", async () => {
    const config = JSON.stringify(simConfig(["a"], { limits: { maxConcurrency: 32, shards: 32 } }));
    // Written to KV directly: the limits are about how many there are, not what they hold.
    const many = Array.from({ length: MAX_SCRAPE_GATES / 32 + 1 }, (_, i) => `many-gates-${i}`);
    await Promise.all(many.map((t) => env.CONFIG.put(`tenant:${t}`, config)));
    try {
      await expectError(await admin("/metrics"), 422, "scrape_too_large", /gates, more than 4000.*part=1\/n/);
    } finally {
      await Promise.all(many.map((t) => env.CONFIG.delete(`tenant:${t}`)));
    }
    const tenants = Array.from({ length: MAX_SCRAPE_TENANTS + 1 }, (_, i) => `many-tenants-${i}`);
    await Promise.all(tenants.map((t) => env.CONFIG.put(`tenant:${t}`, "{}")));
    try {
      await expectError(await admin("/metrics"), 422, "scrape_too_large", /tenants, more than 1000/);
    } finally {
      await Promise.all(tenants.map((t) => env.CONFIG.delete(`tenant:${t}`)));
    }
    expect((await admin("/metrics")).status).toBe(200);
  });
});
