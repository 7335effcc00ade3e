/**
 * A typed client for the HTTP API: `/healthz`, `/readyz`, `/metrics`, `/tasks`, `/classify`, `/embed`
 * and the admin API (adapters, audit log). Requests and answers are typed by `openapi-types.ts`, which
 * is generated from the served OpenAPI document and checked against it by a test, so a route change
 * that the client does not follow fails the type check instead of a caller.
 *
 * Every non-2xx answer becomes a `ServerError` carrying the server's `{error: {code, message}}` (or,
 * for a body that is not one, `http_<status>` and the body's first line); a server that cannot be
 * reached is status 0, code `unreachable`. The token goes only into the Authorization header of
 * admin requests.
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, operations, paths } from "./openapi-types.js";

type Schemas = components["schemas"];
type Json200<Op extends keyof operations> = operations[Op]["responses"] extends {
  200: { content: { "application/json": infer T } };
}
  ? T
  : never;

/** The error body every route answers with: `{error: {code, message, details?}}`. */
export type ErrorBody = Schemas["Error"];
export type TaskInfo = Schemas["TaskInfo"];
export type TaskListing = Schemas["TaskListing"];
export type Prediction = Schemas["Prediction"];
export type ClassifyResponse = Schemas["ClassifyResponse"];
/** `POST /classify` with the `task` parameter repeated: one entry per task, in the order asked. */
export type MultiClassifyResponse = Schemas["MultiClassifyResponse"];
export type EmbedResponse = Schemas["EmbedResponse"];
export type AdapterDetails = Schemas["AdapterDetails"];
export type AuditEntry = Schemas["AuditEntry"];
/** `PUT /admin/adapters/{task}` → 201: the stored version (current or, with `activate: false`, inactive). */
export type UploadResult = Schemas["UploadResult"];
/** `PUT /admin/adapters/{task}?gate=true` → 202: stored inactive, its evaluation gate queued. */
export type GatedUpload = Schemas["GatedUpload"];
export type EvalSet = Schemas["EvalSet"];
export type GateReport = Schemas["GateReport"];
export type TaskStats = Schemas["TaskStats"];
/** A task's canary/shadow split and what each version answered since it was set. */
export type TrafficState = Schemas["TrafficState"];
/** `PUT …/traffic`'s body: the whole new split (`{}` clears both). */
export type TrafficSplitBody = Schemas["TrafficSplitRequest"];
/** The media types an evaluation set may be sent as (TSV, CSV, JSON lines). */
export type EvalSetMediaType = "text/tab-separated-values" | "text/csv" | "application/jsonl" | "application/x-ndjson";

export interface UploadOptions {
  /** false: store and prepare the version without making it current. */
  activate?: boolean;
  /** true: store inactive and let the evaluation gate decide (the answer is then a `GatedUpload`). */
  gate?: boolean;
  /** With `gate`: how far below the current version's score the new one may score and still pass. */
  tolerance?: number;
  /** true: store a file whose metadata names another task under `task` (its metadata rewritten). */
  rename?: boolean;
}
export type Health = Json200<"getHealth">;
export type Readiness = Json200<"getReadiness">;
/** One page of `GET /tasks`. */
export type TaskPage = Json200<"listTasks">;
/** One page of `GET /admin/adapters` (`listAdapters` returns every page merged, `next_cursor` null). */
export type AdapterPage = Json200<"listAdapters">;
export type AuditPage = Json200<"listAuditEntries">;
export type AuditQuery = NonNullable<operations["listAuditEntries"]["parameters"]["query"]>;

/** An error answer from the server, or no answer at all (`status` 0, code `unreachable`). */
export class ServerError extends Error {
  constructor(
    /** The HTTP status; 0 when no answer came. */
    readonly status: number,
    /** The server's error code (`not_found`, `queue_full`, …), or `http_<status>`, `bad_response`, `unreachable`. */
    readonly code: string,
    message: string,
    /** The server's `error.details`, when it sent some. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "ServerError";
  }
}

export interface ClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080` (a trailing slash is fine). */
  url: string;
  /** Admin bearer token; sent only with `/admin/…` requests, never in a URL. */
  token?: string;
  /**
   * The fetch to send requests with (default: the global `fetch` at call time). Pass an in-process
   * app's handler, e.g. `(request) => app.fetch(request)`, to call it without a socket.
   */
  fetch?: (request: Request) => Promise<Response>;
}

/** Pages of at most this many tasks when walking `GET /admin/adapters` and `GET /tasks`. */
const PAGE_SIZE = 1000;

export class SktClient {
  /** The generated openapi-fetch client underneath (same error handling), for calls not wrapped here. */
  readonly api: Client<paths>;
  private readonly admin: { Authorization?: string };

  constructor(o: ClientOptions) {
    const send = o.fetch;
    this.api = createClient<paths>({
      baseUrl: o.url.replace(/\/+$/, ""),
      fetch: send ?? ((request) => globalThis.fetch(request)),
    });
    this.api.use(failuresAsErrors(o.url.replace(/\/+$/, "")));
    this.admin = o.token ? { Authorization: `Bearer ${o.token}` } : {};
  }

  /** `GET /healthz`: the process is up. */
  async health(): Promise<Health> {
    return body(await this.api.GET("/healthz"));
  }

  /** `GET /readyz`: the backbone is loaded and the worker alive (a `ServerError` `not_ready`, 503, otherwise). */
  async ready(): Promise<Readiness> {
    return body(await this.api.GET("/readyz"));
  }

  /** `GET /metrics`: the Prometheus text exposition. */
  async metrics(): Promise<string> {
    return body(await this.api.GET("/metrics", { parseAs: "text" }));
  }

  /** `GET /tasks`: every servable task, all pages walked. */
  async listTasks(): Promise<TaskPage> {
    const all: TaskPage = { tasks: [], total: 0, next_cursor: null };
    let cursor: string | undefined;
    do {
      const page = body(await this.api.GET("/tasks", { params: { query: { limit: PAGE_SIZE, cursor } } }));
      all.tasks.push(...page.tasks);
      all.total = page.total;
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
    return all;
  }

  /** `POST /classify?task=…`: one prediction per text, in order; `pairs` are the second segments of pair tasks. */
  async classify(task: string, texts: string[], pairs?: string[]): Promise<ClassifyResponse> {
    const answer = body(
      await this.api.POST("/classify", {
        params: { query: { task: [task] } },
        body: pairs ? { texts, text_pairs: pairs } : { texts },
      }),
    );
    if (!("predictions" in answer)) throw new ServerError(200, "bad_response", "one task asked, several answered");
    return answer;
  }

  /** `POST /classify?task=a&task=b…`: the same texts through several tasks in one call (shared batches). */
  async classifyTasks(tasks: string[], texts: string[], pairs?: string[]): Promise<MultiClassifyResponse> {
    const answer = body(
      await this.api.POST("/classify", {
        params: { query: { task: tasks } },
        body: pairs ? { texts, text_pairs: pairs } : { texts },
      }),
    );
    // One task keeps the single-task shape; wrap it so callers see one shape.
    return "results" in answer ? answer : { results: [answer] };
  }

  /** `POST /embed`: the backbone's sentence vectors, one per text. */
  async embed(texts: string[], options: { normalize?: boolean } = {}): Promise<EmbedResponse> {
    return body(await this.api.POST("/embed", { body: { texts, ...options } }));
  }

  /** `GET /admin/adapters`: every task and its current version, all pages walked. */
  async listAdapters(): Promise<AdapterPage> {
    const all: AdapterPage = { adapters: [], total: 0, next_cursor: null };
    let cursor: string | undefined;
    do {
      const page = body(
        await this.api.GET("/admin/adapters", {
          params: { query: { limit: PAGE_SIZE, cursor } },
          headers: this.admin,
        }),
      );
      all.adapters.push(...page.adapters);
      all.total = page.total;
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
    return all;
  }

  /** `GET /admin/adapters/{task}`: every stored version with its metadata. */
  async showAdapter(task: string): Promise<AdapterDetails> {
    return body(await this.api.GET("/admin/adapters/{task}", { params: { path: { task } }, headers: this.admin }));
  }

  /**
   * `PUT /admin/adapters/{task}`: store the file's bytes as a new version of the task — current at
   * once by default, inactive with `activate: false`, or evaluated first with `gate: true`.
   */
  async uploadAdapter(
    task: string,
    bytes: Uint8Array,
    options: UploadOptions = {},
  ): Promise<UploadResult | GatedUpload> {
    const query = {
      ...(options.activate === false ? { activate: "false" as const } : {}),
      ...(options.gate ? { gate: "true" as const } : {}),
      ...(options.tolerance !== undefined ? { tolerance: options.tolerance } : {}),
      ...(options.rename ? { rename: "true" as const } : {}),
    };
    return body(
      await this.api.PUT("/admin/adapters/{task}", {
        params: { path: { task }, query },
        headers: { ...this.admin, "Content-Type": "application/octet-stream" },
        // The document types a binary body as a string; the bytes go out unchanged.
        body: bytes as unknown as string,
        bodySerializer: (b: unknown) => b as BodyInit,
      }),
    );
  }

  /** `PUT /admin/adapters/{task}/eval-set`: store the task's labelled evaluation set (for gated uploads). */
  async putEvalSet(task: string, bytes: Uint8Array, mediaType: EvalSetMediaType): Promise<EvalSet> {
    return body(
      await this.api.PUT("/admin/adapters/{task}/eval-set", {
        params: { path: { task } },
        headers: { ...this.admin, "Content-Type": mediaType },
        body: bytes as unknown as string,
        bodySerializer: (b: unknown) => b as BodyInit,
      }),
    );
  }

  /** `GET /admin/adapters/{task}/eval-set`: the stored set's description (not its rows). */
  async getEvalSet(task: string): Promise<EvalSet> {
    return body(
      await this.api.GET("/admin/adapters/{task}/eval-set", { params: { path: { task } }, headers: this.admin }),
    );
  }

  /** `DELETE /admin/adapters/{task}/eval-set`. Resolves to null (204). */
  async deleteEvalSet(task: string): Promise<null> {
    await this.api.DELETE("/admin/adapters/{task}/eval-set", { params: { path: { task } }, headers: this.admin });
    return null;
  }

  /** `GET /admin/adapters/{task}/versions/{N}/report`: progress and result of a version's evaluation gate. */
  async gateReport(task: string, version: number): Promise<GateReport> {
    return body(
      await this.api.GET("/admin/adapters/{task}/versions/{version}/report", {
        params: { path: { task, version } },
        headers: this.admin,
      }),
    );
  }

  /** `DELETE /admin/adapters/{task}/versions/{N}`: one stored version that is not current. Resolves to null (204). */
  async deleteVersion(task: string, version: number): Promise<null> {
    await this.api.DELETE("/admin/adapters/{task}/versions/{version}", {
      params: { path: { task, version } },
      headers: this.admin,
    });
    return null;
  }

  /** `GET /admin/adapters/{task}/traffic`: the canary/shadow split and its counts. */
  async traffic(task: string): Promise<TrafficState> {
    return body(
      await this.api.GET("/admin/adapters/{task}/traffic", { params: { path: { task } }, headers: this.admin }),
    );
  }

  /** `PUT /admin/adapters/{task}/traffic`: set the whole split (a canary share and/or a shadow; `{}` clears). */
  async setTraffic(task: string, split: TrafficSplitBody): Promise<TrafficState> {
    return body(
      await this.api.PUT("/admin/adapters/{task}/traffic", {
        params: { path: { task } },
        headers: this.admin,
        body: split,
      }),
    );
  }

  /** `GET /admin/adapters/{task}/stats`: what the task's classifier has been answering (labels, confidence, drift). */
  async stats(task: string): Promise<TaskStats> {
    return body(
      await this.api.GET("/admin/adapters/{task}/stats", { params: { path: { task } }, headers: this.admin }),
    );
  }

  /** `POST /admin/adapters/{task}/rollback`: back to the previous version, or to `version`. */
  async rollback(task: string, version?: number): Promise<TaskInfo> {
    return body(
      await this.api.POST("/admin/adapters/{task}/rollback", {
        params: { path: { task } },
        headers: this.admin,
        body: version === undefined ? {} : { version },
      }),
    );
  }

  /** `POST /admin/adapters/{task}/activate`: make a stored version current. */
  async activate(task: string, version: number): Promise<TaskInfo> {
    return body(
      await this.api.POST("/admin/adapters/{task}/activate", {
        params: { path: { task } },
        headers: this.admin,
        body: { version },
      }),
    );
  }

  /** `DELETE /admin/adapters/{task}`: the task and all its versions. Resolves to null (204). */
  async deleteTask(task: string): Promise<null> {
    await this.api.DELETE("/admin/adapters/{task}", { params: { path: { task } }, headers: this.admin });
    return null;
  }

  /** `GET /admin/audit`: audited admin requests, oldest first, filtered by what `q` gives. */
  async audit(q: AuditQuery = {}): Promise<AuditPage> {
    return body(await this.api.GET("/admin/audit", { params: { query: q }, headers: this.admin }));
  }
}

/** A 2xx answer's parsed body (failures were thrown by the middleware before this). */
function body<T>(r: { data?: T; response: Response }): T {
  if (r.data === undefined)
    throw new ServerError(r.response.status, "bad_response", `the server answered ${r.response.status} with no body`);
  return r.data;
}

/** `GET /path?query`, for messages. */
function describe(url: string, method: string): string {
  const u = new URL(url);
  return `${method} ${u.pathname}${u.search}`;
}

/**
 * Turns every failure into a `ServerError` before openapi-fetch parses anything: no answer, a
 * non-2xx answer (with the server's error body when it sent one), and a 2xx JSON route whose body
 * is not JSON (a proxy's page).
 */
function failuresAsErrors(base: string): Middleware {
  return {
    onError({ error }) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      return new ServerError(
        0,
        "unreachable",
        `cannot reach the server at ${base}: ${cause?.code ?? cause?.message ?? String(error)}`,
      );
    },
    async onResponse({ request, response, options }) {
      const what = describe(request.url, request.method);
      if (!response.ok) throw errorFrom(response.status, await response.text(), what);
      if (response.status === 204 || options.parseAs !== "json") return undefined;
      const text = await response.text();
      if (text !== "") {
        try {
          JSON.parse(text);
        } catch {
          throw new ServerError(
            response.status,
            "bad_response",
            `${what} answered ${response.status} with a body that is not JSON: ${firstLine(text)}`,
          );
        }
      }
      // The body was read: hand openapi-fetch a fresh response with the same text.
      return new Response(text, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    },
  };
}

function firstLine(text: string): string {
  const line = text.trim().split("\n")[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** The server's error body when it sent one; otherwise the status and what it did send. */
function errorFrom(status: number, text: string, what: string): ServerError {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    const e = parsed.error;
    if (typeof e?.code === "string" && typeof e.message === "string") {
      const details =
        typeof e.details === "object" && e.details !== null ? (e.details as Record<string, unknown>) : undefined;
      return new ServerError(status, e.code, e.message, details);
    }
  } catch {
    // not JSON: fall through
  }
  const why = status === 404 || status === 405 ? " (this server may not offer this endpoint)" : "";
  return new ServerError(
    status,
    `http_${status}`,
    `${what} answered ${status}${text.trim() ? `: ${firstLine(text)}` : ""}${why}`,
  );
}
