/**
 * Run the app on Node's HTTP server (@hono/node-server) with graceful shutdown: on SIGTERM/SIGINT
 * stop accepting connections, let in-flight requests finish while `service.close()` drains the
 * queue, then exit. `shutdownTimeoutMs` caps the wait; after it, remaining connections are cut.
 */
import { serve } from "@hono/node-server";
import type { Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { Hono } from "hono";
import type { ServerConfig } from "../config.js";
import type { InferenceService } from "../engine/service.js";
import type { Logger } from "../logger.js";
import { errorBody } from "./errors.js";

export interface RunningServer {
  /** The bound port (useful with `port: 0`). */
  port: number;
  /** Graceful stop; idempotent (later calls get the same promise). Does not exit the process. */
  close(): Promise<void>;
}

export interface StartServerOptions {
  /** Install SIGTERM/SIGINT handlers that close and then exit (default true). */
  handleSignals?: boolean;
  /** Called after a signal-triggered close (default `process.exit`). */
  exit?: (code: number) => void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHono = Hono<any, any, any>;

/** What Node's parser errors become (Node's own answers to these have an empty body). */
function clientErrorAnswer(code: string | undefined): { status: string; code: string; message: string } {
  if (code === "HPE_HEADER_OVERFLOW") {
    return { status: "431 Request Header Fields Too Large", code: "headers_too_large", message: "The request headers are too large." };
  }
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return { status: "408 Request Timeout", code: "request_timeout", message: "The request was not received in time." };
  }
  return { status: "400 Bad Request", code: "malformed_request", message: "The request is not valid HTTP." };
}

/**
 * Requests Node's HTTP parser rejects never reach the app; answer them in the API's error shape
 * (the document lists 431 on every operation). Same conditions as Node's default handler.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code !== "ECONNRESET" && socket.writable && (socket as Duplex & { bytesWritten?: number }).bytesWritten === 0) {
    const answer = clientErrorAnswer(err.code);
    const body = JSON.stringify(errorBody(answer.code, answer.message));
    socket.end(
      `HTTP/1.1 ${answer.status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
    return;
  }
  socket.destroy(err);
}

export async function startServer(
  app: AnyHono,
  config: ServerConfig,
  service: InferenceService,
  logger: Logger,
  opts: StartServerOptions = {},
): Promise<RunningServer> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }) as Server;
    s.once("listening", () => resolve(s));
    s.once("error", reject);
  });
  server.on("clientError", answerClientError);
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: config.host, port }, "listening");

  let closing: Promise<void> | undefined;
  // Responses still being produced; on shutdown they are told to close their keep-alive connection,
  // so the server does not wait for clients' idle timeouts after the last response.
  const active = new Set<ServerResponse>();
  server.on("request", (_req, res: ServerResponse) => {
    active.add(res);
    res.once("close", () => active.delete(res));
    if (closing && !res.headersSent) res.setHeader("Connection", "close");
  });
  const close = (): Promise<void> => {
    closing ??= (async () => {
      logger.info({ timeoutMs: config.shutdownTimeoutMs }, "shutting down: no new connections, draining");
      const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const res of active) if (!res.headersSent) res.setHeader("Connection", "close");
      server.closeIdleConnections();
      const cutoff = setTimeout(() => {
        logger.warn("shutdown timeout reached; closing remaining connections");
        server.closeAllConnections();
      }, config.shutdownTimeoutMs);
      cutoff.unref();
      try {
        // Every request already received is answered by a still-running engine; only then does the
        // engine drain and stop its worker.
        await httpClosed;
        await service.close();
      } finally {
        clearTimeout(cutoff);
        removeSignalHandlers();
      }
      logger.info("shutdown complete");
    })();
    return closing;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      logger.warn({ signal }, "second signal: exiting now");
      (opts.exit ?? process.exit)(1);
      return;
    }
    logger.info({ signal }, "signal received");
    close().then(
      () => (opts.exit ?? process.exit)(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        (opts.exit ?? process.exit)(1);
      },
    );
  };
  const removeSignalHandlers = () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  };
  if (opts.handleSignals ?? true) {
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }

  return { port, close };
}
