// What a tenant admin may read of foreign text (a backend's error body, the runtime's exception):
// the operator's secrets and infrastructure taken out. A backend answering 401 may echo the key it
// was sent; a connection error names the backend's internal URL. The operator reads it whole.

export interface Redactions {
  /** Values never shown: the backends' API keys. */
  secrets: readonly string[];
  /** Host names never shown: the backends' hosts. */
  hosts: readonly string[];
}

const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>)\]}]+/gi;
const IPV4_PATTERN = /\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b/g;
const BEARER_PATTERN = /\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}/gi;
/** Key-shaped tokens: `sk-...`, `key-...`, long runs of base64 or hex that look like credentials. */
const TOKEN_PATTERN = /\b(?:sk|pk|rk|key|token|api)[-_][A-Za-z0-9_-]{6,}\b|\b[A-Za-z0-9_-]{32,}\b/g;

/** `text` with secrets, URLs, backend hosts, IP addresses and credential-shaped tokens replaced. */
export function redact(text: string, r: Redactions): string {
  let out = text;
  for (const secret of r.secrets) if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  out = out.replace(URL_PATTERN, "[url]").replace(BEARER_PATTERN, "$1 [redacted]").replace(TOKEN_PATTERN, "[redacted]");
  out = out.replace(IPV4_PATTERN, "[host]");
  for (const host of r.hosts) if (host.length > 0) out = out.replace(new RegExp(`${escapeRegExp(host)}(?::\\d{1,5})?`, "g"), "[host]");
  return out;
}

/** The secrets and hosts of a tenant's backends. */
export function redactionsOf(backends: ReadonlyArray<{ url: string; apiKey?: string }>): Redactions {
  const hosts = new Set<string>();
  for (const b of backends) {
    try {
      hosts.add(new URL(b.url).hostname);
    } catch {
      /* a URL the schema let through but URL cannot parse names no host */
    }
  }
  return { secrets: backends.flatMap((b) => (b.apiKey ? [b.apiKey] : [])), hosts: [...hosts] };
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
