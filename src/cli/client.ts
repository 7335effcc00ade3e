/**
 * A small HTTP client for a running server: the admin API (audit log included), `/classify`,
 * `/tasks` and `/embed`.
 * Every non-2xx answer becomes a `ServerError` carrying the server's `{error: {code, message}}`
 * (or, for a body that is not one, `http_<status>` and the body's first line), so the command line
 * can print it as it came. The token goes only into the Authorization header.
 */
import type { AuditEntry } from "../server/audit/audit-log.js";

/** An error answer from the server, or no answer at all (`status` 0, code `unreachable`). */
export class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ServerError";
  }
}

export interface TaskInfoJson {
  task: string;
  version: number;
  variant: string;
  pooling: boolean;
  labels: string[];
  problem_type: string;
  prompt_text: string;
  max_length: number;
  parameters: number;
}

export interface AdapterDetailsJson {
  task: string;
  current: number | null;
  versions: {
    version: number;
    current: boolean;
    bytes: number;
    created_at: string;
    metadata: Record<string, unknown>;
  }[];
}

export interface ClassifyJson {
  task: string;
  adapter_version: number;
  predictions: {
    label?: string;
    score?: number;
    scores?: Record<string, number>;
    value?: number;
    tokens: number;
    truncated: boolean;
  }[];
}

/** `POST /embed {"texts": [...]}` → this (the documented shape). */
export interface EmbedJson {
  model: string;
  embeddings: number[][];
  tokens: number[];
}

/** `GET /admin/audit` → this (one entry per audited admin request, oldest first); the entry is the
 * log's own line, so its type is the log's. */
export interface AuditPageJson {
  entries: AuditEntry[];
  truncated: boolean;
}

export interface AuditQuery {
  task?: string;
  /** ISO date-time; the server checks it. */
  since?: string;
  limit?: number;
}

/** `GET|PUT /admin/adapters/{task}/traffic` → this (the TrafficState schema in routes/traffic.ts). */
export interface TrafficJson {
  task: string;
  current: number | null;
  canary: { version: number; percent: number } | null;
  shadow: { version: number } | null;
  since: string | null;
  versions: { version: number; role: "current" | "canary"; requests: number; rows: number }[];
  shadow_counts: {
    version: number;
    compared: number;
    agreed: number;
    agreement: number | null;
    skipped: number;
  } | null;
}

/** The body of `PUT …/traffic`: the whole new split ({} clears it). */
export interface TrafficSplitJson {
  canary?: { version: number; percent: number };
  shadow?: { version: number };
}

export interface ClientOptions {
  /** Server base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  token?: string;
}

/** One page of `GET /admin/adapters` (the client returns all pages merged, `next_cursor` null). */
export interface AdapterPageJson {
  adapters: { task: string; version: number }[];
  total: number;
  next_cursor: string | null;
}

export class SktClient {
  private readonly base: string;

  constructor(private readonly o: ClientOptions) {
    this.base = o.url.replace(/\/+$/, "");
  }

  /** Every task and its current version: walks the server's pages (1,000 tasks each) to the end. */
  async listAdapters(): Promise<AdapterPageJson> {
    const all: AdapterPageJson = { adapters: [], total: 0, next_cursor: null };
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? "?limit=1000" : `?limit=1000&cursor=${encodeURIComponent(cursor)}`;
      const page: AdapterPageJson = await this.request("GET", `/admin/adapters${query}`, { admin: true });
      all.adapters.push(...page.adapters);
      all.total = page.total;
      cursor = page.next_cursor;
    } while (cursor !== null);
    return all;
  }

  showAdapter(task: string): Promise<AdapterDetailsJson> {
    return this.request("GET", `/admin/adapters/${encodeURIComponent(task)}`, { admin: true });
  }

  uploadAdapter(task: string, bytes: Uint8Array): Promise<TaskInfoJson> {
    return this.request("PUT", `/admin/adapters/${encodeURIComponent(task)}`, { admin: true, bytes });
  }

  rollback(task: string, version?: number): Promise<TaskInfoJson> {
    return this.request("POST", `/admin/adapters/${encodeURIComponent(task)}/rollback`, {
      admin: true,
      json: version === undefined ? {} : { version },
    });
  }

  activate(task: string, version: number): Promise<TaskInfoJson> {
    return this.request("POST", `/admin/adapters/${encodeURIComponent(task)}/activate`, {
      admin: true,
      json: { version },
    });
  }

  traffic(task: string): Promise<TrafficJson> {
    return this.request("GET", `/admin/adapters/${encodeURIComponent(task)}/traffic`, { admin: true });
  }

  setTraffic(task: string, split: TrafficSplitJson): Promise<TrafficJson> {
    return this.request("PUT", `/admin/adapters/${encodeURIComponent(task)}/traffic`, { admin: true, json: split });
  }

  audit(q: AuditQuery = {}): Promise<AuditPageJson> {
    const params = new URLSearchParams();
    if (q.task !== undefined) params.set("task", q.task);
    if (q.since !== undefined) params.set("since", q.since);
    if (q.limit !== undefined) params.set("limit", String(q.limit));
    const query = params.toString();
    return this.request("GET", `/admin/audit${query ? `?${query}` : ""}`, { admin: true });
  }

  deleteTask(task: string): Promise<null> {
    return this.request("DELETE", `/admin/adapters/${encodeURIComponent(task)}`, { admin: true });
  }

  classify(task: string, texts: string[], pairs?: string[]): Promise<ClassifyJson> {
    return this.request("POST", `/classify?task=${encodeURIComponent(task)}`, {
      json: pairs ? { texts, text_pairs: pairs } : { texts },
    });
  }

  embed(texts: string[]): Promise<EmbedJson> {
    return this.request("POST", "/embed", { json: { texts } });
  }

  private async request<T>(
    method: string,
    route: string,
    o: { admin?: boolean; json?: unknown; bytes?: Uint8Array },
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (o.admin && this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    let body: string | Blob | undefined;
    if (o.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(o.json);
    } else if (o.bytes) {
      headers["content-type"] = "application/octet-stream";
      body = new Blob([Uint8Array.from(o.bytes)]);
    }
    let res: Response;
    try {
      res = await fetch(`${this.base}${route}`, { method, headers, body });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new ServerError(
        0,
        "unreachable",
        `cannot reach the server at ${this.base}: ${cause?.code ?? cause?.message ?? String(e)}`,
      );
    }
    const text = await res.text();
    if (!res.ok) throw errorFrom(res.status, text, `${method} ${route}`);
    if (res.status === 204 || text === "") return null as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ServerError(
        res.status,
        "bad_response",
        `${method} ${route} answered ${res.status} with a body that is not JSON: ${firstLine(text)}`,
      );
    }
  }
}

function firstLine(text: string): string {
  const line = text.trim().split("\n")[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** The server's error body when it sent one; otherwise the status and what it did send. */
function errorFrom(status: number, text: string, what: string): ServerError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === "string" && typeof body.error.message === "string")
      return new ServerError(status, body.error.code, body.error.message);
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
