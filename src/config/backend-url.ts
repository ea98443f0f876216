// Where a backend may live. A tenant's config must not turn the router into a proxy for the cloud
// metadata service, the machine it runs on, or itself. Loopback and private addresses are for
// local development and private deployments: allowed only when the deployment opts in
// (ALLOW_LOCAL_BACKENDS = "true"; `npm run dev` and the tests do). The same rules judge where sluice
// sends webhooks and workflow effects (serve/url-policy.ts), with the operator's allowance too.

export interface BackendUrlPolicy {
  /** Loopback, 0.0.0.0, private and unique-local addresses, and localhost names are allowed. */
  allowLocal: boolean;
  /** The router's own host (of its configured PUBLIC_URL, see routerHostOf), or "" when unknown: a backend must not be it. */
  routerHost: string;
  /** What allows a local address, for the refusal (default: the deployment's ALLOW_LOCAL_BACKENDS). */
  localAllowedBy?: string;
}

/** A URL's host as compared with the router's: lower case, no trailing dot, the port only if not the default. */
function comparableHost(url: URL): string {
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  return url.port ? `${host}:${url.port}` : host;
}

/** The router's own host, from its configured public URL (never from a request's Host header); "" when none. */
export function routerHostOf(publicUrl: string | undefined): string {
  if (!publicUrl) return "";
  try {
    return comparableHost(new URL(publicUrl));
  } catch {
    return "";
  }
}

/** Hostnames of cloud metadata services: never a backend, whatever the deployment allows. */
const METADATA_HOSTS = new Set(["metadata.google.internal", "metadata", "instance-data", "metadata.azure.internal"]);

/** Why `url` may not be a backend's, or undefined when it may. */
export function backendUrlProblem(url: string, policy: BackendUrlPolicy): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "is not a URL";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return "must be an http(s) URL";
  if (parsed.username || parsed.password) return "must not embed credentials; put the key in apiKey";
  if (policy.routerHost !== "" && comparableHost(parsed) === policy.routerHost) return "points at this router itself";
  const host = parsed.hostname.toLowerCase().replace(/\.$/, "");
  if (METADATA_HOSTS.has(host)) return "points at a cloud metadata service";
  const kind = addressKind(host);
  if (kind === "link-local") return "points at a link-local address (the cloud metadata service lives there)";
  if (kind !== "public" && !policy.allowLocal)
    return `points at a ${kind} address; allowed only when ${policy.localAllowedBy ?? 'the deployment sets ALLOW_LOCAL_BACKENDS = "true"'}`;
  return undefined;
}

type AddressKind = "public" | "loopback" | "unspecified" | "private" | "link-local" | "localhost name";

/** What kind of place a URL's hostname (as WHATWG URL normalises it) names. */
function addressKind(host: string): AddressKind {
  if (host === "localhost" || host.endsWith(".localhost")) return "localhost name";
  const v4 = host.match(/^(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) return ipv4Kind(v4.slice(1).map(Number) as [number, number, number, number]);
  if (host.startsWith("[") && host.endsWith("]")) return ipv6Kind(host.slice(1, -1));
  return "public";
}

function ipv4Kind([a, b]: [number, number, number, number]): AddressKind {
  if (a === 0) return "unspecified";
  if (a === 127) return "loopback";
  if (a === 169 && b === 254) return "link-local";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127)) return "private";
  return "public";
}

function ipv6Kind(address: string): AddressKind {
  if (address === "::") return "unspecified";
  if (address === "::1") return "loopback";
  // IPv4-mapped (::ffff:a.b.c.d, which URL writes as ::ffff:xxxx:xxxx): judged as the IPv4 address.
  const mapped = address.match(/^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/);
  if (mapped) {
    const [hi, lo] = [Number.parseInt(mapped[1]!, 16), Number.parseInt(mapped[2]!, 16)];
    return ipv4Kind([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  }
  const first = Number.parseInt(address.split(":")[0] || "0", 16);
  if ((first & 0xffc0) === 0xfe80) return "link-local";
  if ((first & 0xfe00) === 0xfc00) return "private";
  return "public";
}
