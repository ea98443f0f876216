// Lease timing, shared by the gate (which expires leases) and the Worker (which renews them).

/**
 * A lease lives this long past its last renewal. The Worker renews every LEASE_RENEW_MS while it
 * works on the request; a Worker that died (crash, eviction, a killed dev server) stops renewing,
 * and the gate's alarm reclaims the slot within this time.
 */
export const LEASE_TTL_MS = 30_000;
export const LEASE_RENEW_MS = 10_000;

/**
 * An attempt that does not tell its first token (AttemptGrant.notifyFirstToken absent) tells it
 * anyway when it comes later than this after the attempt started: a silent attempt then answered,
 * if at all, within this of its start, which is what lets a breaker place its success (breaker.ts).
 */
export const SILENT_FIRST_TOKEN_MS = 250;
