// Paging of admin listings kept in KV (tenants, fleet backends, pools): `limit` and `cursor`.
import { errorResponse } from "../stream/errors";

/** A listing's `limit` query parameter (100 when absent), or null when it is not 1-1000. */
export function pageLimit(value: string | undefined): number | null {
  const limit = Number(value ?? "100");
  return Number.isInteger(limit) && limit >= 1 && limit <= 1000 ? limit : null;
}

/**
 * A page from `list`, or the 400 for a bad `limit` or `cursor`. KV refuses a cursor it did not hand
 * out; any other failure is KV's, not the caller's, and is thrown.
 */
export async function readPage<P>(
  query: { limit?: string; cursor?: string },
  list: (limit: number, cursor?: string) => Promise<P>,
): Promise<P | Response> {
  const limit = pageLimit(query.limit);
  if (limit === null) return errorResponse(400, "invalid_limit", "limit must be an integer from 1 to 1000.");
  const page = await list(limit, query.cursor).catch((err: unknown) => {
    if (query.cursor === undefined) throw err;
    return null;
  });
  return page ?? errorResponse(400, "invalid_cursor", "cursor must be the next_cursor of an earlier page.");
}
