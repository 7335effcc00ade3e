/**
 * The store's compact task index: task → current version plus a small, caller-supplied summary
 * (the fields listings show), so start-up and listings never read every adapter file.
 *
 * On disk it is one append-only file of JSON lines, `<root>/INDEX`:
 *
 *   {"format":"skt-task-index","version":1}      header
 *   {"t":"sst2","p":1}                            intent: sst2 is about to change (fsynced first)
 *   {"t":"sst2","v":3,"s":{…}}                    sst2's CURRENT is now v3 (v null: task deleted)
 *
 * Later lines win. A task whose last line is an intent (a crash between the intent and the commit)
 * or a torn last line is read back from its files at the next start. The store rewrites the file
 * atomically as one line per task when it has grown. Names are ASCII (task-name.ts), so JavaScript's
 * `<` is the stable code-unit order listings and cursors use.
 */
export const INDEX_FILE = "INDEX";
const HEADER = { format: "skt-task-index", version: 1 };

export interface IndexEntry {
  version: number;
  /** Whatever the store's `describe` made of the current version; null when it was not asked. */
  summary: unknown;
}

export interface ParsedIndex {
  entries: Map<string, IndexEntry>;
  /** Tasks whose last word is an intent (or whose line was torn): read them from their files. */
  pending: Set<string>;
  lines: number;
}

export function headerLine(): string {
  return `${JSON.stringify(HEADER)}\n`;
}

export function intentLine(task: string): string {
  return `${JSON.stringify({ t: task, p: 1 })}\n`;
}

export function commitLine(task: string, entry: IndexEntry | null): string {
  return `${JSON.stringify(entry ? { t: task, v: entry.version, s: entry.summary ?? null } : { t: task, v: null })}\n`;
}

/** The file's contents, or null when it is not an index this code wrote (then: rebuild). */
export function parseIndex(text: string, isTask: (name: unknown) => boolean): ParsedIndex | null {
  const lines = text.split("\n");
  let header: unknown;
  try {
    header = JSON.parse(lines[0] ?? "");
  } catch {
    return null;
  }
  if (!isHeader(header)) return null;
  const entries = new Map<string, IndexEntry>();
  const pending = new Set<string>();
  let count = 1;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") continue;
    count++;
    let rec: { t?: unknown; v?: unknown; p?: unknown; s?: unknown };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      // Only the last line can be torn by a crash mid-append; anything else means the file is damaged.
      if (i >= lines.length - 2) continue;
      return null;
    }
    if (!isTask(rec.t)) return null;
    const task = rec.t as string;
    if (rec.p === 1) {
      pending.add(task);
    } else if (rec.v === null) {
      pending.delete(task);
      entries.delete(task);
    } else if (typeof rec.v === "number" && Number.isSafeInteger(rec.v) && rec.v >= 1) {
      pending.delete(task);
      entries.set(task, { version: rec.v, summary: rec.s ?? null });
    } else {
      return null;
    }
  }
  return { entries, pending, lines: count };
}

function isHeader(h: unknown): boolean {
  return typeof h === "object" && h !== null && (h as { format?: unknown }).format === HEADER.format && (h as { version?: unknown }).version === HEADER.version;
}

/** The in-memory index: entries by name plus the names in sorted order (for pages and cursors). */
export class TaskIndex {
  private readonly entries: Map<string, IndexEntry>;
  private readonly sorted: string[];

  constructor(entries: Map<string, IndexEntry> = new Map()) {
    this.entries = entries;
    this.sorted = [...entries.keys()].sort();
  }

  get size(): number {
    return this.entries.size;
  }

  get(task: string): IndexEntry | undefined {
    return this.entries.get(task);
  }

  has(task: string): boolean {
    return this.entries.has(task);
  }

  set(task: string, entry: IndexEntry): void {
    if (!this.entries.has(task)) this.sorted.splice(this.position(task), 0, task);
    this.entries.set(task, entry);
  }

  delete(task: string): void {
    if (!this.entries.delete(task)) return;
    this.sorted.splice(this.position(task), 1);
  }

  /** Every task, sorted. */
  names(): readonly string[] {
    return this.sorted;
  }

  /** Up to `limit` task names sorted after `after` (from the start when undefined). */
  page(after: string | undefined, limit: number): string[] {
    let start = 0;
    if (after !== undefined) {
      start = this.position(after);
      if (this.sorted[start] === after) start++;
    }
    return this.sorted.slice(start, start + limit);
  }

  /** The whole index as a fresh file: header and one commit line per task. */
  serialize(): string {
    const parts = [headerLine()];
    for (const task of this.sorted) parts.push(commitLine(task, this.entries.get(task)!));
    return parts.join("");
  }

  /** First position whose name is ≥ `task` (binary search). */
  private position(task: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < task) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
