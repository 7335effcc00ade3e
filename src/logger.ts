/**
 * The project's logger: pino, JSON lines on stdout. The server adds one line per request with its
 * request id (see `src/server/middleware/request-log.ts`).
 */
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

export interface LoggerOptions {
  /** pino level name (default "info"); "silent" turns logging off. */
  level?: string;
  /** Where lines go (default stdout). Tests pass a stream to capture lines. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    level: opts.level ?? "info",
    base: { service: "sk-tuning-server" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
