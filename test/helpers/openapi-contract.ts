/**
 * Contract checks: every HTTP response a test receives is checked against the OpenAPI document the
 * same server serves. Generic over the document (path templates, every method), so routes added
 * later are covered without touching this file.
 *
 * For a request that matches an operation (path template + method; HEAD uses GET's):
 * - its status must be declared (exactly, or as a `4XX`-style range or `default` if the document
 *   has one);
 * - a response declared without content must have an empty body; one declared with content must
 *   have a declared media type, and a JSON body must validate against that media type's schema
 *   (ajv + ajv-formats). Object schemas are checked closed: a property the document does not list
 *   is a violation, so a field added to a response without documenting it is caught;
 * - required response headers must be present.
 * A request that matches no operation must get a 4xx answer in the shared error schema
 * (`components.schemas.Error`): an undocumented route that answers anything else is a violation.
 * Paths outside the API (the document itself, the docs page) are passed over: see `OUTSIDE_API`.
 */
import { CLIENT_CLOSED_STATUS } from "../../src/server/connection.js";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { defaultConfig } from "../../src/config.js";
import { DOCS_PATH, OPENAPI_PATH } from "../../src/server/routes/docs.js";
import { servedOpenApiDocument } from "../../scripts/lib/openapi-document.js";

// ajv-formats is CommonJS; its default export is the plugin function.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** Not API operations, and deliberately not in the document. */
const OUTSIDE_API = (path: string) => path === OPENAPI_PATH || path === DOCS_PATH || path.startsWith(`${DOCS_PATH}/`);

const _METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

interface MediaTypeObject {
  schema?: unknown;
}
interface ResponseObject {
  content?: Record<string, MediaTypeObject>;
  headers?: Record<string, { required?: boolean }>;
}
interface OperationObject {
  responses?: Record<string, ResponseObject | { $ref: string }>;
}
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Partial<Record<(typeof _METHODS)[number], OperationObject>>>;
  components?: { schemas?: Record<string, unknown>; responses?: Record<string, ResponseObject> };
}

export class ContractViolation extends Error {
  override name = "ContractViolation";
}

interface Template {
  path: string;
  regex: RegExp;
  /** Literal segments; when several templates match, the most literal one wins (as routers do). */
  literals: number;
}

function compileTemplate(path: string): Template {
  const segments = path.split("/");
  const pattern = segments
    .map((s) => (/^\{[^}]+\}$/.test(s) ? "[^/]+" : s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return { path, regex: new RegExp(`^${pattern}$`), literals: segments.filter((s) => !s.startsWith("{")).length };
}

/** JSON pointer escaping for one path segment. */
const pointer = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");

/**
 * Closes every object schema that lists its properties and says nothing about others. Schemas
 * inside `allOf` stay open (closing them would reject the other members' properties).
 */
function closeObjects(node: unknown, inAllOf = false): void {
  if (Array.isArray(node)) {
    for (const item of node) closeObjects(item, inAllOf);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const obj = node as Record<string, unknown>;
  if (!inAllOf && obj.properties !== undefined && obj.additionalProperties === undefined && obj.allOf === undefined) {
    obj.additionalProperties = false;
  }
  for (const [key, value] of Object.entries(obj)) closeObjects(value, key === "allOf");
}

const mediaType = (contentType: string | null) => (contentType ?? "").split(";")[0].trim().toLowerCase();
const isJson = (media: string) => media === "application/json" || media.endsWith("+json");

function declaredMedia(content: Record<string, MediaTypeObject>, media: string): string | undefined {
  if (content[media]) return media;
  const [type] = media.split("/");
  if (content[`${type}/*`]) return `${type}/*`;
  return content["*/*"] ? "*/*" : undefined;
}

function formatErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map(
      (e) =>
        `${e.instancePath || "(body)"} ${e.message ?? ""}${e.keyword === "additionalProperties" ? `: ${JSON.stringify(e.params)}` : ""}`,
    )
    .join("; ");
}

const snippet = (text: string) => (text.length > 300 ? `${text.slice(0, 300)}…` : text);

export interface ContractChecker {
  /**
   * The problems with one response (empty when it matches the document). Reads a clone of the body
   * unless its text is given.
   */
  check(method: string, url: string, res: Response, bodyText?: string): Promise<string[]>;
}

export function createContractChecker(document: OpenApiDocument): ContractChecker {
  const doc = structuredClone(document);
  closeObjects(doc.paths);
  closeObjects(doc.components);
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const DOC_ID = "openapi.json";
  ajv.addSchema(doc, DOC_ID);
  const validators = new Map<string, ValidateFunction>();
  const validatorAt = (ptr: string): ValidateFunction => {
    let v = validators.get(ptr);
    if (!v) {
      v = ajv.compile({ $ref: `${DOC_ID}#${ptr}` });
      validators.set(ptr, v);
    }
    return v;
  };
  const templates = Object.keys(doc.paths).map(compileTemplate);
  const errorSchemaPtr = doc.components?.schemas?.Error ? "/components/schemas/Error" : undefined;

  function findTemplate(path: string): Template | undefined {
    return templates.filter((t) => t.regex.test(path)).sort((a, b) => b.literals - a.literals)[0];
  }

  function resolveResponse(r: ResponseObject | { $ref: string }): { response: ResponseObject; ptr?: string } {
    if ("$ref" in r) {
      const name = r.$ref.replace(/^#\/components\/responses\//, "");
      return { response: doc.components?.responses?.[name] ?? {}, ptr: `/components/responses/${pointer(name)}` };
    }
    return { response: r };
  }

  async function checkJsonBody(ptr: string, text: string): Promise<string | undefined> {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return `body is not JSON: ${snippet(text)}`;
    }
    const validate = validatorAt(ptr);
    if (validate(body)) return undefined;
    return `body does not match the schema: ${formatErrors(validate.errors)}; body: ${snippet(text)}`;
  }

  return {
    async check(method, url, res, bodyText) {
      const { pathname } = new URL(url, "http://localhost");
      if (OUTSIDE_API(pathname)) return [];
      // 499 client_closed is what the app records when the client went away: nothing reaches the wire.
      if (res.status === CLIENT_CLOSED_STATUS) return [];
      const lower = method.toLowerCase() as (typeof _METHODS)[number];
      const head = lower === "head";
      const text = head ? "" : (bodyText ?? (await res.clone().text()));
      const media = mediaType(res.headers.get("content-type"));
      const what = `${method.toUpperCase()} ${pathname} → ${res.status}`;
      const template = findTemplate(pathname);
      const operation = template ? doc.paths[template.path][head ? "get" : lower] : undefined;

      if (!template || !operation) {
        // No such operation: only a 4xx error in the shared shape may come back.
        const reasons: string[] = [];
        if (res.status < 400 || res.status >= 500) reasons.push(`yet status ${res.status}`);
        if (!head && errorSchemaPtr) {
          const bad = isJson(media) ? await checkJsonBody(errorSchemaPtr, text) : `content-type ${media || "(none)"}`;
          if (bad) reasons.push(`and the answer is not the Error schema: ${bad}`);
        }
        return reasons.length > 0 ? [`${what}: no operation in the document, ${reasons.join(", ")}`] : [];
      }

      const opPtr = `/paths/${pointer(template.path)}/${head ? "get" : lower}`;
      const responses = operation.responses ?? {};
      const key = [String(res.status), `${String(res.status)[0]}XX`, "default"].find((k) => responses[k] !== undefined);
      if (!key) {
        return [
          `${what}: status ${res.status} is not declared for ${method.toUpperCase()} ${template.path} (declared: ${Object.keys(responses).join(", ")})`,
        ];
      }
      const { response, ptr: refPtr } = resolveResponse(responses[key]);
      const responsePtr = refPtr ?? `${opPtr}/responses/${pointer(key)}`;
      const problems: string[] = [];
      for (const [name, header] of Object.entries(response.headers ?? {})) {
        if (header.required && !res.headers.has(name)) problems.push(`${what}: required header ${name} is missing`);
      }
      if (head) return problems;
      const content = response.content ?? {};
      if (Object.keys(content).length === 0) {
        if (text.length > 0)
          problems.push(`${what}: the document declares no body, got ${media || "a body"}: ${snippet(text)}`);
        return problems;
      }
      const declared = declaredMedia(content, media);
      if (!declared) {
        problems.push(
          `${what}: content-type ${media || "(none)"} is not declared (declared: ${Object.keys(content).join(", ")})`,
        );
        return problems;
      }
      if (isJson(media) && content[declared].schema !== undefined) {
        const bad = await checkJsonBody(`${responsePtr}/content/${pointer(declared)}/schema`, text);
        if (bad) problems.push(`${what}: ${bad}`);
      }
      return problems;
    },
  };
}

// ---- wiring it into the tests --------------------------------------------------------------------

/** Violations seen since the last `takeContractViolations()` (the setup file fails the test on any). */
const seen: string[] = [];

export function takeContractViolations(): string[] {
  return seen.splice(0, seen.length);
}

type Fetch = (request: Request, ...rest: never[]) => Response | Promise<Response>;
/** The part of OpenAPIHono this needs: its fetch, and the document its routes generate. */
interface DocumentedApp {
  fetch: Fetch;
  getOpenAPIDocument(config: { openapi: string; info: { title: string; version: string } }): unknown;
}

/**
 * Checks every response that goes through `app.fetch` (so `app.request()` and a real server built
 * on the app, e.g. `startServer(app)`) against the app's OpenAPI document: the paths and components
 * it serves at /openapi.json, taken from its route registry directly so that the check adds no
 * request to the logs or metrics tests look at. A violation makes that request throw
 * `ContractViolation` and is also recorded, so it fails the test even where the throw is swallowed
 * (a real server turns it into a 500).
 */
export function withContractCheck<A extends DocumentedApp>(app: A): A {
  const original = app.fetch.bind(app) as (request: Request, ...rest: unknown[]) => Response | Promise<Response>;
  let checker: ContractChecker | undefined;
  const checked = async (request: Request, ...rest: unknown[]): Promise<Response> => {
    const method = request.method;
    const url = request.url;
    const res = await original(request, ...rest);
    // Built on first use, after every route is registered.
    checker ??= createContractChecker(
      app.getOpenAPIDocument({ openapi: "3.0.3", info: { title: "contract", version: "0" } }) as OpenApiDocument,
    );
    const problems = await checker.check(method, url, res);
    if (problems.length > 0) {
      seen.push(...problems);
      throw new ContractViolation(`response does not match the OpenAPI document:\n  ${problems.join("\n  ")}`);
    }
    return res;
  };
  app.fetch = checked;
  return app;
}

// ---- real servers in child processes -------------------------------------------------------------

/** Origins of this project's servers running as child processes, with their checkers (built lazily). */
const childServers = new Map<string, { checker?: Promise<ContractChecker> }>();

/**
 * From now on, every response the global `fetch` gets from `base` (a server child process of this
 * project, e.g. from `spawnServer`) is checked (see contract-setup.ts). The document is generated
 * in-process from the same route definitions, so checking adds no request to the child's logs.
 */
export function checkResponsesFrom(base: string): void {
  childServers.set(new URL(base).origin, {});
}

/** Called by the global fetch wrapper for every response; throws `ContractViolation` on a mismatch. */
export async function checkFetchedResponse(method: string, url: string, res: Response): Promise<void> {
  const server = childServers.get(new URL(url).origin);
  if (!server) return;
  let text: string;
  try {
    text = method.toUpperCase() === "HEAD" ? "" : await res.clone().text();
  } catch {
    return; // the body broke off (e.g. the server was killed); the test sees that itself
  }
  server.checker ??= servedOpenApiDocument(defaultConfig()).then((doc) =>
    createContractChecker(doc as unknown as OpenApiDocument),
  );
  const problems = await (await server.checker).check(method, url, res, text);
  if (problems.length > 0) {
    seen.push(...problems);
    throw new ContractViolation(`response does not match the OpenAPI document:\n  ${problems.join("\n  ")}`);
  }
}
