/**
 * Debug record of the batches the engine runs (SKT_DEBUG_BATCH_LOG): one JSON line per batch with
 * each row's task, adapter version and token ids. The efficiency benchmark replays exactly these
 * batches against the raw backbone, so "the same token batches" is literal rather than a model of
 * the batcher. Lines are buffered and written a few times a second through a stream (one write
 * per batch showed up at ~7 % of the main thread in a profile; no sync I/O on the event loop).
 */
import { createWriteStream, type WriteStream } from "node:fs";

export interface LoggedRow {
  task: string;
  version: number;
  ids: number[];
}

export interface LoggedBatch {
  /** Epoch milliseconds when the batch was handed to the worker. */
  at: number;
  rows: LoggedRow[];
}

const FLUSH_MS = 250;

export class BatchLog {
  private pending: string[] = [];
  private timer: NodeJS.Timeout | null = null;

  private constructor(private readonly stream: WriteStream) {}

  static open(path: string): BatchLog {
    return new BatchLog(createWriteStream(path, { flags: "a" }));
  }

  write(rows: LoggedRow[]): void {
    const entry: LoggedBatch = { at: Date.now(), rows };
    this.pending.push(JSON.stringify(entry));
    this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref();
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0) return;
    this.stream.write(`${this.pending.join("\n")}\n`);
    this.pending = [];
  }

  close(): Promise<void> {
    this.flush();
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}

/** The batches of a log's text (blank lines skipped); throws naming the line on a bad entry. */
export function parseBatchLog(text: string): LoggedBatch[] {
  const out: LoggedBatch[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const entry = JSON.parse(line) as LoggedBatch;
    if (typeof entry.at !== "number" || !Array.isArray(entry.rows))
      throw new Error(`batch log line ${i + 1}: not a batch entry`);
    out.push(entry);
  });
  return out;
}
