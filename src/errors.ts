/**
 * One error type for the whole project. Modules below the server throw it with a machine-readable
 * `code` (e.g. `shape_mismatch`) and a `kind` that says what class of failure it is; only the server
 * maps kinds to HTTP statuses, so no model code knows about HTTP.
 */
export type ErrorKind =
  | "bad_request" // malformed input from a client (400)
  | "not_found" // unknown task or version (404)
  | "too_large" // body, text count or upload over a limit (413)
  | "unsupported_media" // wrong content type (415)
  | "invalid_adapter" // an adapter file failed validation (422)
  | "unprocessable" // a well-formed request the server will not carry out as asked, e.g. over a limit (422)
  | "conflict" // the operation cannot apply to the current state (409)
  | "overloaded" // queue full (429)
  | "not_ready" // backbone or worker not available (503)
  | "timeout" // per-request deadline passed (504)
  | "request_timeout" // the client did not finish sending its request in time (408)
  | "client_closed" // the client went away before its answer (499: logged and counted, never sent)
  | "storage" // the disk refused a write (507)
  | "internal"; // a bug (500)

export class SktError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "SktError";
  }
}

export function isSktError(e: unknown): e is SktError {
  return e instanceof SktError;
}

/**
 * The one error for a request whose deadline passed, wherever it is noticed (the queue, a running
 * batch, the server's backstop): kind `timeout` (504), code `timeout`.
 */
export function deadlineExceeded(detail = "the request's deadline passed before it was answered"): SktError {
  return new SktError("timeout", "timeout", detail);
}

/** The one error for a request whose client went away or cancelled it: kind and code `client_closed` (499). */
export function clientClosed(detail = "the client closed the connection before the answer"): SktError {
  return new SktError("client_closed", "client_closed", detail);
}
