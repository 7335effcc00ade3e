/**
 * The store's compact task index: task → current version plus a small, caller-supplied summary
 * (the fields listings show), so start-up and listings never read every adapter file.
 *
 * On disk it is one append-only file of JSON lines, `<root>/INDEX`:
 *
 *   {"format":"skt-task-index","version":2}      header
 *   ["sst2"]                                      intent: sst2 is about to change (fsynced first)
 *   ["sst2",3,[…]]                                sst2's CURRENT is now v3, with its summary
 *   ["sst2",null]                                 sst2 was deleted
 *
 * Lines are arrays, not objects, because 100,000 of them are parsed at every start (about 2.5×
 * faster and less than half the bytes of the same fields as objects).
 * Later lines win. A task whose last line is an intent (a crash between the intent and the commit)
 * or a torn last line is read back from its files at the next start. The store rewrites the file
 * atomically as one line per task when it has grown. Names are ASCII (task-name.ts), so JavaScript's
 * `<` is the stable code-unit order listings and cursors use.
 */
export const INDEX_FILE = "INDEX";
const HEADER = { format: "skt-task-index", version: 2 };

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
  return `${JSON.stringify([task])}\n`;
}

export function commitLine(task: string, entry: IndexEntry | null): string {
  return `${JSON.stringify(entry ? [task, entry.version, entry.summary ?? null] : [task, null])}\n`;
}

/** The file's contents, or null when it is not an index this code wrote (then: rebuild). */
export function parseIndex(text: string, isTask: (name: unknown) => boolean): ParsedIndex | null {
  const firstBreak = text.indexOf("\n");
  let header: unknown;
  try {
    header = JSON.parse(firstBreak < 0 ? text : text.slice(0, firstBreak));
  } catch {
    return null;
  }
  if (!isHeader(header)) return null;
  const records = parseRecords(firstBreak < 0 ? "" : text.slice(firstBreak + 1));
  if (records === null) return null;
  const entries = new Map<string, IndexEntry>();
  const pending = new Set<string>();
  for (const rec of records) {
    if (!Array.isArray(rec) || rec.length < 1 || rec.length > 3 || !isTask(rec[0])) return null;
    const task = rec[0] as string;
    if (rec.length === 1) {
      pending.add(task);
    } else if (rec[1] === null) {
      pending.delete(task);
      entries.delete(task);
    } else if (typeof rec[1] === "number" && Number.isSafeInteger(rec[1]) && rec[1] >= 1) {
      pending.delete(task);
      entries.set(task, { version: rec[1], summary: rec[2] ?? null });
    } else {
      return null;
    }
  }
  return { entries, pending, lines: records.length + 1 };
}

/**
 * The lines after the header as values. Fast path: all lines as one JSON array (one parse instead
 * of one per line). Otherwise line by line, where only the last line may be torn (a crash
 * mid-append: dropped, and the intent before it stays pending); anything else is damage.
 */
function parseRecords(body: string): unknown[] | null {
  const trimmed = body.trimEnd();
  if (trimmed === "") return [];
  try {
    return JSON.parse(`[${trimmed.replaceAll("\n", ",")}]`) as unknown[];
  } catch {
    // fall through to find the bad line
  }
  const lines = trimmed.split("\n");
  const out: unknown[] = [];
  for (let i = 0; i < lines.length; i++) {
    try {
      out.push(JSON.parse(lines[i]));
    } catch {
      if (i === lines.length - 1) break;
      return null;
    }
  }
  return out;
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

  /** Up to `limit` task names sorted after `after` (from the start when undefined), passing `match` if given. */
  page(after: string | undefined, limit: number, match?: (task: string) => boolean): string[] {
    let start = 0;
    if (after !== undefined) {
      start = this.position(after);
      if (this.sorted[start] === after) start++;
    }
    if (!match) return this.sorted.slice(start, start + limit);
    const names: string[] = [];
    for (let i = start; i < this.sorted.length && names.length < limit; i++) if (match(this.sorted[i])) names.push(this.sorted[i]);
    return names;
  }

  /** How many tasks pass `match`. */
  count(match: (task: string) => boolean): number {
    let n = 0;
    for (const task of this.sorted) if (match(task)) n++;
    return n;
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
      if (this.sorted[mid] < task) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
