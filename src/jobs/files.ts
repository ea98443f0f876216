// A tenant's files (OpenAI's Files API): the bytes in R2 under the tenant's prefix, the metadata in
// D1, always read with the tenant, so one tenant's key never reaches another's file. A batch input
// file keeps its line index beside it (batch-input.ts). Bounded per file (MAX_FILE_BYTES) and per
// tenant (MAX_TENANT_FILE_BYTES); batch output files expire after OUTPUT_FILE_TTL_S.
import type { LineIndex } from "./batch-input";

export const MAX_TENANT_FILE_BYTES = 1024 * 1024 * 1024;
/** A file's name is at most this many characters (as most file systems allow). */
export const MAX_FILENAME_CHARS = 255;
/** Batch output and error files are kept this long (seconds), as OpenAI's are. */
export const OUTPUT_FILE_TTL_S = 30 * 86_400;

export type Purpose = "batch" | "batch_output";

/** OpenAI's file object. */
export interface FileObject {
  id: string;
  object: "file";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: Purpose;
  status: "processed";
  expires_at: number | null;
}

interface FileRow {
  id: string;
  filename: string;
  purpose: string;
  bytes: number;
  lines: number;
  created_at: number;
  expires_at: number | null;
}

export const newFileId = () => `file-${crypto.randomUUID().replaceAll("-", "")}`;

export class FileStore {
  constructor(
    private readonly db: D1Database,
    private readonly bucket: R2Bucket,
    readonly tenant: string,
  ) {}

  /** Bytes the tenant's files hold now (expired ones are removed first). */
  async usedBytes(now: number): Promise<number> {
    await this.dropExpired(now);
    const row = await this.db
      .prepare(`SELECT COALESCE(SUM(bytes), 0) AS n FROM files WHERE tenant = ?`)
      .bind(this.tenant)
      .first<{ n: number }>();
    return row?.n ?? 0;
  }

  async create(
    file: { filename: string; purpose: Purpose; bytes: Uint8Array; index?: LineIndex; lines: number },
    now: number,
    id = newFileId(),
  ): Promise<FileObject> {
    const createdAt = Math.floor(now / 1000);
    const expiresAt = file.purpose === "batch_output" ? createdAt + OUTPUT_FILE_TTL_S : null;
    // The row first: an object in R2 is never without the row that counts it, lists it and deletes it.
    await this.db
      .prepare(
        `INSERT OR REPLACE INTO files (id, tenant, filename, purpose, bytes, lines, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(id, this.tenant, file.filename, file.purpose, file.bytes.length, file.lines, createdAt, expiresAt)
      .run();
    try {
      await this.bucket.put(this.key(id), file.bytes);
      if (file.index) await this.bucket.put(`${this.key(id)}.index`, JSON.stringify(file.index));
    } catch (err) {
      await this.delete(id).catch(() => {});
      throw err;
    }
    return toObject({
      id,
      filename: file.filename,
      purpose: file.purpose,
      bytes: file.bytes.length,
      lines: file.lines,
      created_at: createdAt,
      expires_at: expiresAt,
    });
  }

  async get(id: string): Promise<(FileObject & { lines: number }) | null> {
    const row = await this.db
      .prepare(`SELECT id, filename, purpose, bytes, lines, created_at, expires_at FROM files WHERE tenant = ? AND id = ?`)
      .bind(this.tenant, id)
      .first<FileRow>();
    return row && { ...toObject(row), lines: row.lines };
  }

  /** Newest first, after the file `after` (a cursor), at most `limit`. */
  async list(limit: number, after?: string): Promise<FileObject[]> {
    const cursor = after ? await this.get(after) : null;
    const rows = await this.db
      .prepare(
        `SELECT id, filename, purpose, bytes, lines, created_at, expires_at FROM files WHERE tenant = ?
         AND (created_at < ? OR (created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?`,
      )
      .bind(this.tenant, cursor?.created_at ?? Number.MAX_SAFE_INTEGER, cursor?.created_at ?? 0, cursor?.id ?? "", limit)
      .all<FileRow>();
    return rows.results.map(toObject);
  }

  async content(id: string): Promise<ReadableStream | null> {
    if (!(await this.get(id))) return null;
    return (await this.bucket.get(this.key(id)))?.body ?? null;
  }

  /** A batch input file's line index. */
  async index(id: string): Promise<LineIndex | null> {
    const object = await this.bucket.get(`${this.key(id)}.index`);
    return object ? ((await object.json()) as LineIndex) : null;
  }

  /** The bytes at [offset, offset + length) of a file, as text. */
  async slice(id: string, offset: number, length: number): Promise<string | null> {
    const object = await this.bucket.get(this.key(id), { range: { offset, length } });
    return object ? object.text() : null;
  }

  async delete(id: string): Promise<boolean> {
    const removed = await this.db.prepare(`DELETE FROM files WHERE tenant = ? AND id = ?`).bind(this.tenant, id).run();
    await this.bucket.delete([this.key(id), `${this.key(id)}.index`]);
    return removed.meta.changes > 0;
  }

  /** Every file of the tenant (it was deleted). */
  async deleteAll(): Promise<void> {
    let cursor: string | undefined;
    do {
      const page = await this.bucket.list({ prefix: `${this.tenant}/`, cursor });
      if (page.objects.length > 0) await this.bucket.delete(page.objects.map((o) => o.key));
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    await this.db.prepare(`DELETE FROM files WHERE tenant = ?`).bind(this.tenant).run();
  }

  private async dropExpired(now: number): Promise<void> {
    const expired = await this.db
      .prepare(`SELECT id FROM files WHERE tenant = ? AND expires_at IS NOT NULL AND expires_at <= ?`)
      .bind(this.tenant, Math.floor(now / 1000))
      .all<{ id: string }>();
    for (const { id } of expired.results) await this.delete(id);
  }

  private key(id: string): string {
    return `${this.tenant}/${id}`;
  }
}

function toObject(row: FileRow): FileObject {
  return {
    id: row.id,
    object: "file",
    bytes: row.bytes,
    created_at: row.created_at,
    filename: row.filename,
    purpose: row.purpose as Purpose,
    status: "processed",
    expires_at: row.expires_at,
  };
}
