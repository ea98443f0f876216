import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { GENERATED, generatedModule } from "./build-dashboard";

describe("the dashboard page served by the Worker", () => {
  it("is what dashboard/ builds to (run `npm run build:dashboard` after changing it)", async () => {
    expect(await readFile(GENERATED, "utf8")).toBe(await generatedModule());
  });
});
