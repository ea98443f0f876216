// A GPU server's prefix cache, modelled: a prompt is a chain of blocks (one per message, each hashed
// with the ones before it, as vLLM hashes its KV blocks), kept in an LRU of `capacity` blocks. The
// answer generated is cached after its prompt, as vLLM keeps a generation's blocks: a next turn that
// resends it finds it. A
// prompt's leading blocks found in the cache are a hit: its prefill (the sim's first-token delay) is
// cut by the cached share of its characters. Hits and queries are counted in tokens (characters / 4)
// and reported at /metrics as vLLM does.
import { createHash } from "node:crypto";

export class PrefixCache {
  private readonly blocks = new Map<string, true>();
  queryTokens = 0;
  hitTokens = 0;

  constructor(private readonly capacity: () => number) {}

  /** Looks the prompt up (counting it) and caches its blocks, then `answer`'s; returns the share of the prompt that was cached (0-1). */
  serve(messages: ReadonlyArray<{ role?: string; content?: unknown }>, answer?: string): number {
    let chain = "";
    let total = 0;
    let cached = 0;
    let leading = true;
    for (const m of messages) {
      const text = `${m.role ?? ""}:${typeof m.content === "string" ? m.content : JSON.stringify(m.content ?? "")}`;
      chain = createHash("sha256").update(chain).update(text).digest("hex");
      total += text.length;
      if (leading && this.blocks.has(chain)) {
        cached += text.length;
        this.blocks.delete(chain);
      } else leading = false;
      this.blocks.set(chain, true);
    }
    if (answer) this.blocks.set(createHash("sha256").update(chain).update(`assistant:${answer}`).digest("hex"), true);
    while (this.blocks.size > this.capacity()) this.blocks.delete(this.blocks.keys().next().value!);
    this.queryTokens += Math.ceil(total / 4);
    this.hitTokens += Math.ceil(cached / 4);
    return total === 0 ? 0 : cached / total;
  }

  reset(): void {
    this.blocks.clear();
    this.queryTokens = 0;
    this.hitTokens = 0;
  }
}
