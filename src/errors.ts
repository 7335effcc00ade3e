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
  | "conflict" // the operation cannot apply to the current state (409)
  | "unprocessable" // a well-formed request whose values cannot apply, e.g. a percent over 100 (422)
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
