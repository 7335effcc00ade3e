/**
 * What happens below the routes, on the connection: requests Node's HTTP parser refuses, request
 * targets hono cannot route (`OPTIONS *`), and clients that go away before their request has
 * been received. Each gets the project's JSON error shape (where anyone is still listening) and
 * is logged without a stack: none of them is a server failure.
 */
import { RequestError } from "@hono/node-server";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { isSktError } from "../errors.js";
import type { Logger } from "../logger.js";

/**
 * nginx's "client closed request": what the logs and `skt_requests_total` record for a client
 * that went away (nobody receives it).
 */
export const CLIENT_CLOSED_STATUS = 499 as ContentfulStatusCode;

export interface ConnectionVerdict {
  status: ContentfulStatusCode;
  code: string;
  message: string;
}

export const CLIENT_CLOSED: ConnectionVerdict = {
  status: CLIENT_CLOSED_STATUS,
  code: "client_closed",
  message: "The client closed the connection before the request was answered.",
};

/** The `{"error": {"code", "message"}}` body (errors.ts has the same; importing it would be a cycle). */
function jsonError(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

const REASON_PHRASES: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  413: "Payload Too Large",
  431: "Request Header Fields Too Large",
};

/** Sockets whose request the parser refused, with what the client was told. */
const parserVerdicts = new WeakMap<Socket, ConnectionVerdict>();

/** The answer to one of Node's `clientError`s (parse errors, header and request timeouts). */
export function parserVerdict(err: NodeJS.ErrnoException): ConnectionVerdict {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, code: "headers_too_large", message: "The request headers are too large." };
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return {
        status: 413,
        code: "chunk_extensions_too_large",
        message: "The request's chunk extensions are too large.",
      };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, code: "request_timeout", message: "The request was not received completely in time." };
    default:
      return {
        status: 400,
        code: "malformed_http",
        message: `The request is not valid HTTP/1.1 (${err.code ?? "parse error"}).`,
      };
  }
}

/**
 * The server's `clientError` listener: Node's own answers are a bare status line. Mirrors Node's
 * default (answer only when no response has started on the socket, then close) with a JSON body.
 */
export function handleClientError(err: NodeJS.ErrnoException, socket: Socket, logger: Logger): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  if (err.code === "HPE_INVALID_EOF_STATE") {
    // The client ended the connection in the middle of a request: it went away, nothing to answer.
    parserVerdicts.set(socket, CLIENT_CLOSED);
    logger.debug({ code: err.code }, "client closed the connection mid-request");
    socket.destroy();
    return;
  }
  const verdict = parserVerdict(err);
  parserVerdicts.set(socket, verdict);
  logger.debug({ code: err.code, status: verdict.status }, "HTTP parser refused a request");
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!inFlight?.headersSent) {
    const body = jsonError(verdict.code, verdict.message);
    socket.end(
      `HTTP/1.1 ${verdict.status} ${REASON_PHRASES[verdict.status] ?? "Error"}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  // The socket is half-open after end(); do not wait for the client to close its side.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * @hono/node-server's `errorHandler`: called when it cannot build a Request (a target that is
 * not a path, such as `OPTIONS *`, or a bad Host header). Its default is a bare 400.
 */
export function unroutableRequest(logger: Logger): (err: unknown) => Response {
  return (err) => {
    if (!(err instanceof RequestError)) {
      // Not a request it could not build: the app threw before answering (a bug).
      logger.error({ err }, "unhandled error");
      return new Response(jsonError("internal", "Internal server error."), {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    }
    logger.debug({ reason: err.message }, "request target refused");
    const body = jsonError(
      "bad_request_target",
      "The request target must be a path such as /classify (`*` and invalid Host headers are not served).",
    );
    return new Response(body, { status: 400, headers: { "content-type": "application/json", connection: "close" } });
  };
}

/**
 * Why a request failed on the client's side, if it did: the parser refused it, or the client went
 * away before its body arrived (or while it waited for its answer). Undefined: a real failure.
 */
export function clientSideFailure(incoming: IncomingMessage | undefined, err: unknown): ConnectionVerdict | undefined {
  if (isSktError(err) && err.kind === "client_closed") return CLIENT_CLOSED;
  if (!incoming) return undefined;
  const verdict = parserVerdicts.get(incoming.socket);
  if (verdict) return verdict;
  if (!incoming.complete && (incoming.destroyed || incoming.errored !== null || incoming.socket?.destroyed))
    return CLIENT_CLOSED;
  return undefined;
}
