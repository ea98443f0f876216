// sluice's log lines: one JSON object per line (Workers Logs index the fields). What goes wrong
// inside sluice is written here with the request id; clients get a stable code and that id.

export function logError(requestId: string | undefined, msg: string, err: unknown, fields: Record<string, unknown> = {}): void {
  console.error(
    JSON.stringify({ level: "error", requestId, msg, error: String(err), stack: err instanceof Error ? err.stack : undefined, ...fields }),
  );
}
