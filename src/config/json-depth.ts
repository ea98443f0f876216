// How deep a request body may nest: hashing a body for its journal key and validating it walk it,
// and a body nested 20,000 deep would overflow the stack there. Checked for every body sluice
// accepts (the chat route's, a batch line's), iteratively, so any depth is safe to ask about.

/** Objects and arrays nested deeper than this are refused. */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` nests objects and arrays more than `limit` deep. */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== "object") continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
    }
  }
  return false;
}
