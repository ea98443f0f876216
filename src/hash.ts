// A string hash every layer may use: which shard a key goes to, which backend a session prefers.

/** FNV-1a (32 bits, unsigned): cheap, and spreads similar strings ("idem:job-1", "idem:job-2") evenly. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
