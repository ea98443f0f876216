// Weighted max-min fair division of a pool's slots (weighted water-filling): every claimant gets
// its floor first, then slots go to claimants in proportion to their weights, none beyond what it
// asked for or its cap, and capacity one claimant cannot use goes to the others (work-conserving).
// A slot held for a generation produces that generation's tokens at the backend's decode pace, so
// shares of slots held over time are shares of tokens generated: a tenant of long generations holds
// its slots longer, not more of them (docs/design-notes.md, "Fair shares in slots").

export interface Claim {
  key: string;
  /** Its weight against the other claimants (> 0). */
  weight: number;
  /** Slots it asks for now. */
  want: number;
  /** Slots it gets before anyone gets more than their weighted share (when it wants them). */
  min?: number;
  /** Slots it never gets more of. */
  max?: number;
}

interface Bounds {
  key: string;
  weight: number;
  lo: number;
  hi: number;
}

/**
 * Divides `capacity` slots among `claims` (keys distinct). The result adds up to the lesser of
 * `capacity` and what the claims can take; each share lies within [min, min(want, max)] when the
 * floors fit, and a claimant short of what it can take never has a weighted share more than one
 * slot below another's (leftover slots go by largest remainder, ties by key).
 */
export function fairShares(capacity: number, claims: readonly Claim[]): Map<string, number> {
  const caps = claims.map((c) => ({ key: c.key, weight: c.weight, cap: Math.max(0, Math.min(c.want, c.max ?? Infinity)) }));
  const floors = claims.map((c, i) => Math.min(c.min ?? 0, caps[i]!.cap));
  const floorTotal = floors.reduce((a, b) => a + b, 0);
  // Floors beyond the capacity are themselves shared by weight.
  const bounds: Bounds[] =
    floorTotal >= capacity
      ? caps.map((c, i) => ({ key: c.key, weight: c.weight, lo: 0, hi: floors[i]! }))
      : caps.map((c, i) => ({ key: c.key, weight: c.weight, lo: floors[i]!, hi: c.cap }));
  return fill(Math.max(0, Math.floor(capacity)), bounds);
}

/** Each gets clamp(level * weight, lo, hi) for the level that fills `capacity`, rounded to whole slots. */
function fill(capacity: number, items: readonly Bounds[]): Map<string, number> {
  const at = (level: number, b: Bounds) => Math.min(b.hi, Math.max(b.lo, level * b.weight));
  const total = (level: number) => items.reduce((sum, b) => sum + at(level, b), 0);
  const shares = new Map<string, number>();
  if (items.length === 0) return shares;
  if (total(Infinity) <= capacity) {
    for (const b of items) shares.set(b.key, b.hi);
    return shares;
  }
  // The filling level: total() is monotone in it, so bisect.
  let low = 0;
  let high = Math.max(...items.map((b) => b.hi / b.weight));
  for (let i = 0; i < 64 && high - low > 1e-12 * high; i++) {
    const mid = (low + high) / 2;
    if (total(mid) <= capacity) low = mid;
    else high = mid;
  }
  const exact = items.map((b) => ({ b, value: at(low, b) }));
  let left = capacity;
  for (const e of exact) {
    const whole = Math.floor(e.value + 1e-9);
    shares.set(e.b.key, whole);
    left -= whole;
  }
  const byRemainder = exact
    .filter((e) => shares.get(e.b.key)! < e.b.hi)
    .sort((x, y) => y.value - Math.floor(y.value + 1e-9) - (x.value - Math.floor(x.value + 1e-9)) || (x.b.key < y.b.key ? -1 : 1));
  for (const e of byRemainder) {
    if (left <= 0) break;
    shares.set(e.b.key, shares.get(e.b.key)! + 1);
    left--;
  }
  return shares;
}
