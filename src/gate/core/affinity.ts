// Which of equally near backends a session or conversation prefers: rendezvous (highest random
// weight) hashing of its affinity key with each backend's id. Every turn of a conversation ranks the
// backends the same way, so it returns to the one that holds its prefix in cache; adding or removing
// a backend moves only the conversations that preferred it; and the picker's capacity check bounds
// the load (a full backend is passed over for the next in the ranking).
import { fnv1a } from "../../hash";

/** The backend's rank for the key: higher comes first. */
export function affinityScore(key: string, backendId: string): number {
  // A second round spreads keys that differ only in their last characters.
  return fnv1a(`${fnv1a(`${key}|${backendId}`).toString(36)}|${backendId}`);
}
