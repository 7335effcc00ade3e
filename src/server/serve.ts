/**
 * Run the app on Node's HTTP server (@hono/node-server) with graceful shutdown: on SIGTERM/SIGINT
 * stop accepting connections, drop connections whose request has not been received completely,
 * let received requests finish while `service.close()` drains the queue, then exit.
 * `shutdownTimeoutMs` caps the wait; after it, remaining connections are cut.
 */
import { getRequestListener } from "@hono/node-server";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Hono } from "hono";
import type { ServerConfig } from "../config.js";
import type { InferenceService } from "../engine/service.js";
import type { Logger } from "../logger.js";
import type { FastLane } from "./classify-fast-lane.js";
import { handleClientError, unroutableRequest } from "./connection.js";

export interface RunningServer {
  /** The bound port (useful with `port: 0`). */
  port: number;
  /** Graceful stop; idempotent (later calls get the same promise). Does not exit the process. */
  close(): Promise<void>;
}

/** The settings the listener uses: where to listen and how long a shutdown drains. */
export type ListenSettings = Pick<ServerConfig, "host" | "port" | "shutdownTimeoutMs">;

export interface StartServerOptions {
  /** Install SIGTERM/SIGINT handlers that close and then exit (default true). */
  handleSignals?: boolean;
  /** Called after a signal-triggered close (default `process.exit`). */
  exit?: (code: number) => void;
  /** Takes the requests it can serve before the app sees them (the /classify fast lane, SKT_FAST_LANE). */
  fastLane?: FastLane;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHono = Hono<any, any, any>;

export async function startServer(
  app: AnyHono,
  config: ListenSettings,
  service: InferenceService,
  logger: Logger,
  opts: StartServerOptions = {},
): Promise<RunningServer> {
  const listener = getRequestListener(app.fetch, { hostname: config.host, errorHandler: unroutableRequest(logger) });
  // The listener handles its own errors (errorHandler); Node's server does not await it.
  const fastLane = opts.fastLane;
  const server = createServer((req, res) => {
    if (!fastLane?.(req, res)) void listener(req, res);
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => handleClientError(err, socket, logger));
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
    server.listen(config.port, config.host);
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: config.host, port }, "listening");

  let closing: Promise<void> | undefined;
  // Responses still being produced; on shutdown they are told to close their keep-alive connection,
  // so the server does not wait for clients' idle timeouts after the last response.
  const active = new Set<ServerResponse>();
  // Every connection with the request it is answering (null between requests, or while headers
  // are still arriving): on shutdown those without a completely received request are dropped.
  const connections = new Map<Socket, IncomingMessage | null>();
  server.on("connection", (socket: Socket) => {
    connections.set(socket, null);
    socket.once("close", () => connections.delete(socket));
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    active.add(res);
    if (connections.has(req.socket)) connections.set(req.socket, req);
    res.once("close", () => {
      active.delete(res);
      if (connections.get(req.socket) === req) connections.set(req.socket, null);
    });
    if (closing && !res.headersSent) res.setHeader("Connection", "close");
  });
  const close = (): Promise<void> => {
    closing ??= (async () => {
      logger.info({ timeoutMs: config.shutdownTimeoutMs }, "shutting down: no new connections, draining");
      const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const res of active) if (!res.headersSent) res.setHeader("Connection", "close");
      server.closeIdleConnections();
      // A half-sent request (headers or body) could hold the shutdown for the whole timeout.
      let dropped = 0;
      for (const [socket, req] of connections) {
        if (socket.destroyed) continue;
        if (req === null || !req.complete) {
          socket.destroy();
          dropped++;
        }
      }
      if (dropped > 0)
        logger.info({ connections: dropped }, "dropped connections whose request was not received completely");
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
