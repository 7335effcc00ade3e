/**
 * `POST /classify?task=NAME` served on Node's http directly, for the request nearly all traffic
 * is: one `task` parameter, a JSON body with a Content-Length, texts within the limits. Going
 * through hono costs the main thread a web Request and Response, routing, the zod validators and a
 * closure per middleware for every request — about half of its time per request at saturation
 * (README "Speed", `npm run bench:fast-lane`) — and the main thread shares the cores with
 * onnxruntime.
 *
 * For such a request the lane does what the app's route does, through the same functions: the
 * request id (hono's rule), the deadline and its backstop (408 while the body is still arriving,
 * 504 after), the client-abort signal, `skt_requests_total`/`skt_request_duration_seconds`, the
 * request's log line, and every failure answered by `failureAnswer` (errors.ts), as the app's
 * error handler does. Anything else goes to the app unchanged: before the body is read (another
 * method, target, content type, a chunked or oversized body), or with the body it read when the
 * body is not JSON or not a shape the lane's validator is sure of (the app then answers with
 * zod's messages). test/server/fast-lane.test.ts holds the two paths to the same answers.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Hono } from "hono";
import { TASK_NAME_PATTERN } from "../adapters/spec.js";
import type { ServerConfig } from "../config.js";
import type { InferenceService } from "../engine/service.js";
import { clientClosed } from "../errors.js";
import type { Logger } from "../logger.js";
import type { SktMetrics } from "../metrics.js";
import { errorBody, failureAnswer } from "./errors.js";
import { recordInferenceRequest, taskLabel } from "./middleware/classify-metrics.js";
import { logRequest } from "./middleware/request-log.js";
import {
  DEADLINE_GRACE_MS,
  bodyTimedOut,
  classifyBodyLimit,
  classifyInputs,
  deadlinePassed,
  resultJson,
  type ClassifyBody,
} from "./routes/classify.js";

export interface ClassifyFastLaneDeps {
  service: InferenceService;
  metrics: SktMetrics;
  config: Pick<ServerConfig, "maxTexts" | "maxTextChars" | "requestTimeoutMs" | "retryAfterSeconds">;
  logger: Logger;
}

/** Takes the request (true) or leaves it, untouched, to the next handler (false). */
export type FastLane = (req: IncomingMessage, res: ServerResponse) => boolean;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHono = Hono<any, any, any>;

/** `/classify?task=NAME` and nothing else: a name that needs no percent-decoding, one parameter. */
const CLASSIFY_TARGET = new RegExp(`^/classify\\?task=(${TASK_NAME_PATTERN.source.slice(1, -1)})$`);
/** Content types both hono's media-type gate and its JSON validator accept. */
const JSON_CONTENT_TYPE = /^application\/json(\s*;\s*charset=utf-8)?$/i;
/** hono's `requestId` middleware: a client's X-Request-Id is kept when it is this safe, else a UUID. */
const REQUEST_ID_LIMIT = 255;
const UNSAFE_REQUEST_ID = /[^\w\-=]/;
const BODY_KEYS: ReadonlySet<string> = new Set(["text", "texts", "text_pair", "text_pairs"]);
/** The origin of the Request handed to the app (it routes by path; /classify reads no host). */
const APP_ORIGIN = "http://localhost";

export function requestIdFor(header: string | string[] | undefined): string {
  const given = typeof header === "string" ? header : undefined;
  return given && given.length <= REQUEST_ID_LIMIT && !UNSAFE_REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * The body as the route's zod schema would accept it, or undefined when the lane is not sure
 * (the app's validator then decides). Never accepts what the schema refuses: the fast-lane test
 * checks that over random bodies.
 */
export function fastClassifyBody(
  value: unknown,
  limits: { maxTexts: number; maxTextChars: number },
): ClassifyBody | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const body = value as Record<string, unknown>;
  for (const key of Object.keys(body)) if (!BODY_KEYS.has(key)) return undefined;
  const short = (v: unknown): v is string => typeof v === "string" && v.length <= limits.maxTextChars;
  const list = (v: unknown): v is string[] =>
    Array.isArray(v) && v.length >= 1 && v.length <= limits.maxTexts && v.every(short);
  const { text, texts, text_pair: pair, text_pairs: pairs } = body;
  if (text !== undefined) {
    if (texts !== undefined || pairs !== undefined || !short(text)) return undefined;
    if (pair === undefined) return { text };
    return short(pair) ? { text, text_pair: pair } : undefined;
  }
  if (pair !== undefined || !list(texts)) return undefined;
  if (pairs === undefined) return { texts };
  return list(pairs) && pairs.length === texts.length ? { texts, text_pairs: pairs } : undefined;
}

export function classifyFastLane(deps: ClassifyFastLaneDeps, app: AnyHono): FastLane {
  const bodyLimit = classifyBodyLimit(deps.config);
  return (req, res) => {
    if (req.method !== "POST") return false;
    const target = CLASSIFY_TARGET.exec(req.url ?? "");
    if (!target) return false;
    const { headers } = req;
    const declared = headers["content-length"];
    if (declared === undefined || headers["transfer-encoding"] !== undefined) return false;
    if (!JSON_CONTENT_TYPE.test(headers["content-type"] ?? "")) return false;
    // The app answers 413 without reading the body.
    if (Number.parseInt(declared, 10) > bodyLimit) return false;
    serveClassify(deps, app, req, res, target[1]).catch((err: unknown) => {
      // Every failure is answered inside; this is a bug writing the answer. Never an unhandled rejection.
      deps.logger.error({ err }, "unhandled error in the /classify fast lane");
      if (res.headersSent) res.destroy();
      else res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify(INTERNAL_ERROR));
    });
    return true;
  };
}

const decoder = new TextDecoder();
const INTERNAL_ERROR = errorBody("internal", "Internal server error.");

function errorOptions({ logger, config }: ClassifyFastLaneDeps) {
  return { logger, retryAfterSeconds: config.retryAfterSeconds };
}

async function serveClassify(
  deps: ClassifyFastLaneDeps,
  app: AnyHono,
  req: IncomingMessage,
  res: ServerResponse,
  task: string,
): Promise<void> {
  const { service, metrics, config, logger } = deps;
  const started = performance.now();
  const reqId = requestIdFor(req.headers["x-request-id"]);
  const deadline = Date.now() + config.requestTimeoutMs;
  const abort = new AbortController();
  const stopWatchingClient = abortOnClientClose(res, abort);
  let timer: NodeJS.Timeout | undefined;
  const backstop = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        if (!req.complete) return reject(bodyTimedOut(config.requestTimeoutMs));
        const err = deadlinePassed(config.requestTimeoutMs);
        abort.abort(err);
        reject(err);
      },
      deadline + DEADLINE_GRACE_MS - Date.now(),
    );
  });
  let status: number;
  let payload: string;
  let answerHeaders: Record<string, string> = {};
  try {
    const bytes = await Promise.race([readBody(req), backstop]);
    const body = parseBody(bytes, config);
    if (!body) {
      clearTimeout(timer);
      stopWatchingClient();
      return await forwardToApp(app, req, res, bytes, deps);
    }
    const result = await Promise.race([
      service.classify({ ...classifyInputs(body), deadline, task, signal: abort.signal }),
      backstop,
    ]);
    status = 200;
    payload = JSON.stringify(resultJson(result));
  } catch (err) {
    const answer = failureAnswer(err, { reqId, path: "/classify", incoming: req }, errorOptions(deps));
    status = answer.status;
    payload = JSON.stringify(answer.body);
    answerHeaders = answer.headers;
  } finally {
    clearTimeout(timer);
    stopWatchingClient();
  }
  const seconds = (performance.now() - started) / 1000;
  recordInferenceRequest(metrics, [taskLabel(service, metrics, task)], status, seconds);
  logRequest(logger, { reqId, method: "POST", path: "/classify", task, status, started });
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
    "x-request-id": reqId,
    ...answerHeaders,
  });
  res.end(payload);
}

/** The body when it is JSON of a shape the lane is sure of; undefined sends it to the app. */
function parseBody(bytes: Buffer, limits: { maxTexts: number; maxTextChars: number }): ClassifyBody | undefined {
  let value: unknown;
  try {
    // Decoded as @hono/node-server decodes it (a TextDecoder: a leading BOM is dropped).
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
  return fastClassifyBody(value, limits);
}

/** Aborts `abort` when the response closes before it was written out (the client went away); returns the remover. */
function abortOnClientClose(res: ServerResponse, abort: AbortController): () => void {
  const onClose = () => {
    if (!res.writableFinished) abort.abort(clientClosed("The client closed the connection."));
  };
  res.once("close", onClose);
  return () => res.off("close", onClose);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.once("error", reject);
    // A client gone mid-body: failureAnswer sees the request incomplete and answers 499.
    req.once("close", () => {
      if (!req.complete) reject(new Error("aborted"));
    });
  });
}

/**
 * The app serves the request with the body already read (hono's `fetch` with Node's request and
 * response as its bindings, as @hono/node-server passes them), and its answer is written out.
 */
async function forwardToApp(
  app: AnyHono,
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  deps: ClassifyFastLaneDeps,
): Promise<void> {
  const abort = new AbortController();
  const stopWatchingClient = abortOnClientClose(res, abort);
  let response: Response;
  try {
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
    const request = new Request(APP_ORIGIN + req.url, {
      method: "POST",
      headers,
      body: new Uint8Array(body),
      signal: abort.signal,
    });
    response = await app.fetch(request, { incoming: req, outgoing: res });
  } catch (err) {
    // hono answers its own errors; this is a failure to build the Request or a bug.
    const answer = failureAnswer(err, { reqId: undefined, path: "/classify", incoming: req }, errorOptions(deps));
    response = Response.json(answer.body, { status: answer.status, headers: answer.headers });
  } finally {
    stopWatchingClient();
  }
  const bytes = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  headers["content-length"] = String(bytes.length);
  res.writeHead(response.status, headers);
  res.end(bytes);
}
