// Runs several sims in one process for the benchmark, and prints their ports as one JSON line.
import { SimServer } from "../sim/server";
import type { SimOptions } from "../sim/types";

const specs = JSON.parse(process.argv[2] ?? "[]") as Array<Partial<SimOptions>>;
const sims = specs.map((o) => new SimServer({ port: 0, ...o }));
const ports = await Promise.all(sims.map((s) => s.listen()));
console.log(JSON.stringify({ ports }));
process.on("SIGTERM", () => void Promise.all(sims.map((s) => s.close())).then(() => process.exit(0)));
