/**
 * The admin audit log: one JSON object per line, appended to a file nothing else writes.
 *
 * Writes: one writer per process. `append` queues a line; a single drain loop opens the file with
 * O_APPEND, writes everything queued so far in one `write`, `fdatasync`s it (group commit) and
 * closes it, and only then resolves the callers, so an entry is on disk before the admin hears the
 * answer. A failed write rejects the entries of that batch only. The file is opened per batch
 * (admin actions are rare), so no descriptor stays open and a rotated-away log is simply started
 * anew; when a crash tore the last line, the next batch starts a fresh line first, so a torn line
 * never glues onto the next entry. Entries get their `time` when queued, so file order is time order (as long
 * as the clock does not step back).
 *
 * Reads: `query` scans the file backwards in chunks and stops once it has `limit` matches or meets
 * an entry older than `since`, so its memory is bounded by the limit, not the file size.
 */
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";

export type AuditResult = "ok" | "refused" | "failed";

export interface AuditEntry {
  /** ISO time the entry was queued (the action's end). */
  time: string;
  request_id: string | null;
  /** The token's name; null when no token was accepted. */
  actor: string | null;
  action: string;
  method: string;
  path: string;
  task: string | null;
  version: number | null;
  /** sha256 (hex) of the uploaded bytes, for uploads. */
  sha256: string | null;
  status: number;
  result: AuditResult;
  /** The error code of a non-2xx answer. */
  code: string | null;
  client: string;
}

export interface AuditQuery {
  /** At most this many entries (the newest that match). */
  limit: number;
  /** Only entries at or after this time (ms since epoch). */
  since?: number;
  /** Only entries this predicate accepts. */
  filter?: (entry: AuditEntry) => boolean;
}

export interface AuditPage {
  /** Oldest first (the newest entry is last). */
  entries: AuditEntry[];
  /** More entries matched than `limit`; the oldest of them were left out. */
  truncated: boolean;
}

/** The slice of a file handle the log uses; node's `FileHandle` satisfies it. */
export interface AuditFileHandle {
  write(buffer: Uint8Array, offset: number, length: number, position: null): Promise<{ bytesWritten: number }>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
  datasync(): Promise<void>;
  close(): Promise<void>;
}

export interface AuditFs {
  mkdir(path: string, options: { recursive: true }): Promise<string | undefined>;
  open(path: string, flags: string, mode?: number): Promise<AuditFileHandle>;
}

export interface AuditLogOptions {
  /** fdatasync after every batch (default true). */
  fsync?: boolean;
  fs?: AuditFs;
  now?: () => Date;
}

/** Default file name, inside the adapter store's root; the store ignores it (not a task name). */
export const AUDIT_FILE_NAME = "audit.jsonl";

const READ_CHUNK = 64 * 1024;
/** Lines longer than this are not ours (entries are a few hundred bytes); reads skip them. */
const MAX_LINE_BYTES = 64 * 1024;

interface Pending {
  line: string;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export function sha256OfBytes(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export class AuditLog {
  readonly file: string;
  private readonly fsync: boolean;
  private readonly fs: AuditFs;
  private readonly now: () => Date;
  private pending: Pending[] = [];
  private draining: Promise<void> | null = null;

  constructor(file: string, opts: AuditLogOptions = {}) {
    this.file = path.resolve(file);
    this.fsync = opts.fsync ?? true;
    this.fs = opts.fs ?? fsp;
    this.now = opts.now ?? (() => new Date());
  }

  /** Queue one entry (its `time` is set now); resolves once it is written (and synced). */
  append(fields: Omit<AuditEntry, "time">): Promise<void> {
    const entry: AuditEntry = { time: this.now().toISOString(), ...fields };
    const line = `${JSON.stringify(entry)}\n`;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ line, resolve, reject });
      this.draining ??= this.drain();
    });
  }

  async query(q: AuditQuery): Promise<AuditPage> {
    let handle: AuditFileHandle;
    try {
      handle = await this.fs.open(this.file, "r");
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return { entries: [], truncated: false };
      throw e;
    }
    const newestFirst: AuditEntry[] = [];
    try {
      let pos = (await handle.stat()).size;
      let tail: Buffer = Buffer.alloc(0); // start of the line that ends where the previous chunk began
      let skipTail = false; // that line is over the size limit
      let done = false;
      const take = (raw: Buffer): void => {
        if (raw.length === 0) return;
        let entry: AuditEntry;
        try {
          entry = JSON.parse(raw.toString("utf8")) as AuditEntry;
        } catch {
          return; // a torn line from a crash
        }
        if (typeof entry !== "object" || entry === null || typeof entry.time !== "string") return;
        if (q.since !== undefined && Date.parse(entry.time) < q.since) {
          done = true;
          return;
        }
        if (q.filter && !q.filter(entry)) return;
        newestFirst.push(entry);
        if (newestFirst.length > q.limit) done = true;
      };
      while (pos > 0 && !done) {
        const len = Math.min(READ_CHUNK, pos);
        pos -= len;
        const chunk = Buffer.alloc(len);
        await readExactly(handle, chunk, pos);
        const buf = Buffer.concat([chunk, tail]);
        const lines = buf.toString("latin1").split("\n"); // latin1: byte offsets = char offsets
        // lines[0] may continue further back; the rest are whole lines.
        let offset = buf.length;
        for (let i = lines.length - 1; i >= 1 && !done; i--) {
          const start = offset - lines[i].length;
          const isTail = i === lines.length - 1;
          if (!(isTail && skipTail)) take(buf.subarray(start, offset));
          offset = start - 1;
        }
        if (lines.length > 1) skipTail = false;
        tail = buf.subarray(0, lines[0].length);
        if (tail.length > MAX_LINE_BYTES) {
          tail = Buffer.alloc(0);
          skipTail = true;
        }
      }
      if (!done && !skipTail) take(tail);
    } finally {
      await handle.close().catch(() => undefined);
    }
    const truncated = newestFirst.length > q.limit;
    return { entries: newestFirst.slice(0, q.limit).reverse(), truncated };
  }

  /** Resolves once every entry queued so far has been written (or has failed). */
  async flushed(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    await Promise.resolve(); // never finish synchronously: `append` assigns `draining` after this returns
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.writeBatch(Buffer.from(batch.map((p) => p.line).join(""), "utf8"));
        for (const p of batch) p.resolve();
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    // No await between the emptiness check above and this: an append now starts a new drain.
    this.draining = null;
  }

  private async writeBatch(bytes: Buffer): Promise<void> {
    await this.fs.mkdir(path.dirname(this.file), { recursive: true });
    const handle = await this.fs.open(this.file, "a+", 0o640);
    try {
      const size = (await handle.stat()).size;
      let torn = false;
      if (size > 0) {
        const last = Buffer.alloc(1);
        await readExactly(handle, last, size - 1);
        torn = last[0] !== 0x0a;
      }
      // Another writer's append seen half-way also looks torn: that costs an empty line, which reads skip.
      await writeAll(handle, torn ? Buffer.concat([Buffer.from("\n"), bytes]) : bytes);
      if (this.fsync) await handle.datasync();
    } finally {
      await handle.close().catch(() => undefined);
    }
  }
}

async function writeAll(handle: AuditFileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset, null);
    if (bytesWritten <= 0) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    offset += bytesWritten;
  }
}

async function readExactly(handle: AuditFileHandle, buf: Buffer, position: number): Promise<void> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await handle.read(buf, got, buf.length - got, position + got);
    if (bytesRead <= 0) throw Object.assign(new Error("unexpected end of the audit log"), { code: "EIO" });
    got += bytesRead;
  }
}
