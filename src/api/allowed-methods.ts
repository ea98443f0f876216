// 405 rather than 404 for a known path asked with the wrong method, with the `Allow` header
// (RFC 9110, 15.5.6): the methods the app's routes answer for that path.

export interface RouteEntry {
  method: string;
  path: string;
}

/** The methods routes answer at `path` (middleware, registered as "ALL", does not count), sorted. */
export function allowedMethods(routes: readonly RouteEntry[], path: string): string[] {
  const methods = new Set<string>();
  for (const route of routes) {
    if (route.method === "ALL" || !patternOf(route.path).test(path)) continue;
    methods.add(route.method);
    if (route.method === "GET") methods.add("HEAD");
  }
  return [...methods].sort();
}

const patterns = new Map<string, RegExp>();

/** A route path ("/admin/tenants/:tenant") as a regular expression for one path. */
function patternOf(routePath: string): RegExp {
  let pattern = patterns.get(routePath);
  if (!pattern) {
    const body = routePath
      .split("/")
      .map((part) => (part.startsWith(":") ? "[^/]+" : part === "*" ? ".*" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("/");
    patterns.set(routePath, (pattern = new RegExp(`^${body}/?$`)));
  }
  return pattern;
}
