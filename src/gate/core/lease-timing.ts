// Lease timing, shared by the gate (which expires leases) and the Worker (which renews them).

/**
 * A lease lives this long past its last renewal. The Worker renews every LEASE_RENEW_MS while it
 * works on the request; a Worker that died (crash, eviction, a killed dev server) stops renewing,
 * and the gate's alarm reclaims the slot within this time.
 */
export const LEASE_TTL_MS = 30_000;
export const LEASE_RENEW_MS = 10_000;
