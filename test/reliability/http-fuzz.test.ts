/**
 * Property-based fuzzing of the HTTP API against the REAL engine (backbone, worker, registry, store)
 * behind the real app, in-process via `app.request`: malformed and oversized JSON, wrong types,
 * invalid UTF-8, control characters, lone surrogates, empty and huge texts, too many texts, hostile
 * task names in the query string and in admin paths.
 *
 * Invariants, for every input: never a 5xx; every error is `{"error": {"code", "message"}}` with a
 * 4xx status; a 200 carries one finite prediction per text; nothing is written anywhere (fuzzed
 * requests never legitimately change state); the server still answers a valid request afterwards;
 * and memory stays bounded over the whole run (no timing is measured).
 *
 * Last, the class that found issue 18's defect 1, on a real HTTP server on loopback (raw sockets):
 * classify requests and authenticated uploads cut off anywhere in their body, framed by length or
 * in chunks, ended by a close, a half-close or a broken chunk. The client gets nothing or a 4xx JSON
 * error; the server counts no 5xx, logs nothing at error level and no stack, writes nothing.
 *
 * FC_SEED and FC_RUNS (a multiplier) reproduce or lengthen a run.
 */
import fc from "fast-check";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
import { classifyBodyLimit } from "../../src/server/routes/classify.js";
import { classifyFastLane } from "../../src/server/classify-fast-lane.js";
import { startServer, type RunningServer } from "../../src/server/serve.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import {
  ADMIN_TOKEN,
  adminHeaders,
  expectErrorBody,
  expectRawError,
  listTree,
  metricValue,
  parseRawResponse,
  rawExchange,
  startEngineRig,
  type EngineRig,
} from "./helpers.js";

const RUNS = Number(process.env.FC_RUNS ?? 1);
const fcOptions = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns: Math.max(1, Math.round(numRuns * RUNS)),
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
});

const TASKS = { single: "fuzz-single", pair: "fuzz-pair", prefix: "fuzz-prefix", regress: "fuzz-regress" } as const;
const EXISTING = new Set<string>(Object.values(TASKS));

let rig: EngineRig;
let baselineTree: string[];
const tally = {
  classify: 0,
  query: 0,
  admin: 0,
  fixed: 0,
  statuses: new Map<number, number>(),
  codes: new Map<string, number>(),
};

beforeAll(async () => {
  rig = await startEngineRig();
  const assets = rig.engine.assets;
  await rig.engine.upload(TASKS.single, servableAdapterBytes(assets, { task: TASKS.single, seed: 1 }));
  await rig.engine.upload(TASKS.pair, servableAdapterBytes(assets, { task: TASKS.pair, seed: 2, textPair: true }));
  await rig.engine.upload(
    TASKS.prefix,
    servableAdapterBytes(assets, {
      task: TASKS.prefix,
      variant: "prefix",
      seed: 3,
      scale: 0.02,
      promptText: "sentiment :",
    }),
  );
  await rig.engine.upload(
    TASKS.regress,
    servableAdapterBytes(assets, { task: TASKS.regress, seed: 4, problemType: "regression", pooling: false }),
  );
  baselineTree = await listTree(rig.root);
});

afterAll(async () => {
  const statuses = Object.fromEntries([...tally.statuses].sort((a, b) => a[0] - b[0]));
  const codes = Object.fromEntries([...tally.codes].sort((a, b) => b[1] - a[1]));
  console.log(
    `[http-fuzz] inputs: classify bodies ${tally.classify}, query task names ${tally.query}, admin requests ${tally.admin}, fixed cases ${tally.fixed}`,
  );
  console.log(`[http-fuzz] statuses ${JSON.stringify(statuses)}`);
  console.log(`[http-fuzz] error codes ${JSON.stringify(codes)}`);
  await rig?.close();
});

// ---- the invariants -----------------------------------------------------------------------------

/** Checks one response; returns its error code (undefined for 2xx). */
async function checkResponse(res: Response, what: string, texts?: number): Promise<string | undefined> {
  tally.statuses.set(res.status, (tally.statuses.get(res.status) ?? 0) + 1);
  if (res.status >= 500) throw new Error(`${what}: status ${res.status}: ${await res.text()}`);
  if (res.status < 400) {
    if (texts !== undefined && res.status === 200) {
      const body = (await res.json()) as {
        predictions: { score?: number; value?: number; scores?: Record<string, number> }[];
      };
      expect(body.predictions).toHaveLength(texts);
      for (const p of body.predictions) {
        const numbers = [p.score, p.value, ...Object.values(p.scores ?? {})].filter((x) => x !== undefined);
        expect(numbers.length).toBeGreaterThan(0);
        for (const n of numbers)
          expect(Number.isFinite(n), `${what}: non-finite output ${JSON.stringify(p)}`).toBe(true);
      }
    } else await res.arrayBuffer();
    return undefined;
  }
  const err = await expectErrorBody(res);
  tally.codes.set(err.code, (tally.codes.get(err.code) ?? 0) + 1);
  return err.code;
}

async function stillServes(): Promise<void> {
  const res = await classify(TASKS.single, JSON.stringify({ text: "still here after that" }));
  expect(res.status).toBe(200);
  const body = (await res.json()) as { predictions: unknown[] };
  expect(body.predictions).toHaveLength(1);
}

function classify(
  taskQuery: string | null,
  body: BodyInit | null,
  contentType: string | null = "application/json",
  raw = false,
) {
  const q = taskQuery === null ? "" : `?task=${raw ? taskQuery : encodeURIComponent(taskQuery)}`;
  const headers: Record<string, string> = contentType === null ? {} : { "content-type": contentType };
  return rig.app.request(`/classify${q}`, { method: "POST", headers, body });
}

/** How many texts a body holds if the server should accept it (undefined: it may refuse it). */
function expectedTexts(body: unknown): number | undefined {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.text === "string") return 1;
  if (Array.isArray(b.texts)) return b.texts.length;
  return undefined;
}

// ---- generators ---------------------------------------------------------------------------------

const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)); // lone surrogates too
const control = fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c));

const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 120 }) },
  { weight: 2, arbitrary: fc.string({ unit: codeUnit, maxLength: 60 }) },
  { weight: 2, arbitrary: fc.string({ unit: control, maxLength: 30 }) },
  { weight: 2, arbitrary: fc.lorem({ maxCount: 30 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "",
      " ",
      "\u0000",
      "\ufeff",
      "\u202e\u202d",
      "\ud800",
      "\udfff\ud800",
      "x".repeat(2000),
      "word ".repeat(400),
      "\u0301".repeat(500),
      "💩".repeat(300),
    ),
  },
);
const scalar = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined));

/** Bodies shaped like a request, with any mix of right and wrong field types. */
const structuredBody = fc
  .record(
    {
      text: fc.oneof(text, scalar),
      texts: fc.oneof(fc.array(text, { maxLength: 70 }), fc.array(scalar, { maxLength: 5 }), scalar),
      text_pair: fc.oneof(text, scalar),
      text_pairs: fc.oneof(fc.array(text, { maxLength: 8 }), scalar),
      extra: scalar,
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o));

/** A valid body, then bytes inserted, deleted or flipped somewhere. */
const mutatedBody = fc
  .tuple(
    fc.constantFrom(
      '{"text":"a fine film"}',
      '{"texts":["a","b","c"]}',
      '{"text":"x","text_pair":"y"}',
      '{"texts":["a"],"text_pairs":["b"]}',
    ),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 255 })), {
      minLength: 1,
      maxLength: 4,
    }),
  )
  .map(([base, edits]) => {
    const bytes = [...new TextEncoder().encode(base)];
    for (const [pos, op, byte] of edits) {
      const i = pos % (bytes.length + 1);
      if (op === 0) bytes.splice(i, 0, byte);
      else if (op === 1) bytes.splice(i, 1);
      else bytes[Math.min(i, bytes.length - 1)] = byte;
    }
    return new Uint8Array(bytes);
  });

const classifyBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  { weight: 5, arbitrary: structuredBody },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: mutatedBody },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }) }, // mostly invalid UTF-8
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc
      .array(text, { minLength: 1, maxLength: 3 })
      .map((texts) => `{"texts":${JSON.stringify(texts)}}\u0000garbage`),
  },
);

const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant("application/json") },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "application/json; charset=utf-8",
      "text/plain",
      "application/octet-stream",
      "multipart/form-data; boundary=x",
      "",
      "application/jsonx",
      "APPLICATION/JSON",
    ),
  },
  { weight: 1, arbitrary: fc.constant(null) },
);

const hostileName = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "..",
      "../",
      "../../etc/passwd",
      "..%2f..%2fetc",
      "%2e%2e",
      "%2e%2e%2f",
      "%252e%252e",
      "..\\..\\windows",
      "a/../b",
      "/etc/passwd",
      ".",
      "",
      " ",
      "fuzz-single ",
      "FUZZ-SINGLE",
      "fuzz-single\n",
      "fuzz-single%00",
      "fuzz-single\u0000",
      "ｆｕｚｚ",
      "fuzz‐single",
      "a".repeat(65),
      "a".repeat(5000),
      "CON",
      "nul",
      ".tmp-0123456789abcdef",
      "CURRENT",
      "adapters",
      "%",
      "%%",
      "%zz",
      "-a",
      "_a",
      "a.b",
      "a b",
      "a?b=c",
      "a#b",
      "a;b",
      "🙂",
      "\u202etxt.exe",
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 80 }) },
  {
    weight: 2,
    arbitrary: fc.string({
      unit: fc.constantFrom(".", "/", "\\", "%", "2", "5", "e", "E", "f", "F", "a", "\u0000", "-", "_", "~"),
      maxLength: 24,
    }),
  },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 30 }) },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,63}$/) }, // valid names of tasks that do not exist
);

/** How a name is put into a URL: encoded, raw, or encoded twice. */
const encoding = fc.constantFrom<(s: string) => string>(
  (s) => encodeURIComponent(s),
  (s) => s,
  (s) => encodeURIComponent(encodeURIComponent(s)),
  (s) => s.replace(/\./g, "%2e").replace(/\//g, "%2f"),
);

/** Full GC when it can be had (V8 flag set at run time), then the usage figures. */
function memoryAfterGc(): NodeJS.MemoryUsage {
  v8.setFlagsFromString("--expose-gc");
  const gc = runInNewContext("typeof gc === 'function' ? gc : undefined") as (() => void) | undefined;
  gc?.();
  gc?.();
  return process.memoryUsage();
}

function decodedName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

// ---- the properties -----------------------------------------------------------------------------

describe("fixed edge cases (run first: they also warm the engine up to its largest shapes)", () => {
  it("limits, nesting, huge bodies, empty texts", async () => {
    const { maxTexts, maxTextChars } = rig.config;
    const cases: Array<[string, BodyInit, number[], string?]> = [
      [
        "texts over the limit",
        JSON.stringify({ texts: Array.from({ length: maxTexts + 1 }, () => "x") }),
        [413],
        "too_many_texts",
      ],
      ["a text over the char limit", JSON.stringify({ text: "x".repeat(maxTextChars + 1) }), [413], "text_too_long"],
      [
        "a pair over the char limit",
        JSON.stringify({ text: "x", text_pair: "y".repeat(maxTextChars + 1) }),
        [413],
        "text_too_long",
      ],
      ["empty texts list", JSON.stringify({ texts: [] }), [400], "invalid_request"],
      ["empty object", "{}", [400], "invalid_request"],
      ["empty body", "", [400]],
      ["null", "null", [400]],
      ["a number", "1e999", [400]],
      ["deep nesting", "[".repeat(200_000) + "]".repeat(200_000), [400]],
      ["deep object nesting", '{"a":'.repeat(100_000) + "1" + "}".repeat(100_000), [400]],
      [
        "body over the raw limit",
        `{"text":"${"x".repeat(classifyBodyLimit(rig.config) + 10)}"}`,
        [413],
        "body_too_large",
      ],
      ["many keys", `{${Array.from({ length: 50_000 }, (_, i) => `"k${i}":1`).join(",")}}`, [400]],
      ["duplicate keys", '{"text":"a","text":["b"]}', [400]],
      ["__proto__ key", '{"text":"a","__proto__":{"texts":["x"]}}', [200, 400]],
      ["BOM before JSON", '\ufeff{"text":"a"}', [200, 400]],
    ];
    for (const [what, body, want, code] of cases) {
      tally.fixed++;
      const res = await classify(TASKS.single, body);
      const got = await checkResponse(res, what);
      expect(want, `${what}: got ${res.status}`).toContain(res.status);
      if (code) expect(got, what).toBe(code);
    }
    // Accepted at the limits: maxTexts texts of maxTextChars characters, each truncated.
    tally.fixed++;
    const full = await classify(
      TASKS.single,
      JSON.stringify({
        texts: Array.from({ length: maxTexts }, (_, i) =>
          `${i} ${"long text ".repeat(maxTextChars / 10)}`.slice(0, maxTextChars),
        ),
      }),
    );
    expect(full.status).toBe(200);
    const body = (await full.json()) as { predictions: { truncated: boolean }[] };
    expect(body.predictions).toHaveLength(maxTexts);
    expect(body.predictions.every((p) => p.truncated)).toBe(true);
    // Empty texts through every variant.
    for (const task of [TASKS.single, TASKS.prefix, TASKS.regress]) {
      tally.fixed++;
      await checkResponse(
        await classify(task, JSON.stringify({ texts: ["", " ", "\u0000"] })),
        `empty texts on ${task}`,
        3,
      );
    }
    tally.fixed++;
    await checkResponse(await classify(TASKS.pair, JSON.stringify({ texts: [""], text_pairs: [""] })), "empty pair", 1);
    // No task parameter at all, a GET, an unknown route.
    for (const [path, init] of [
      ["/classify", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }],
      ["/classify?task=fuzz-single", { method: "GET" }],
      ["/classify/../admin/adapters", { method: "POST" }],
      ["/%2e%2e/%2e%2e/etc/passwd", { method: "GET" }],
    ] as const) {
      tally.fixed++;
      await checkResponse(await rig.app.request(path, init), `${init.method} ${path}`);
    }
    expect(await listTree(rig.root)).toEqual(baselineTree);
    await stillServes();
  });
});

describe("HTTP fuzzing against the real engine", () => {
  let before: NodeJS.MemoryUsage;

  beforeAll(async () => {
    // Warm up to the largest batch shapes of every variant, so what follows measures growth, not
    // onnxruntime's arena or V8's heap reaching their working size.
    for (const task of Object.values(TASKS)) {
      const texts = Array.from({ length: rig.config.maxTexts }, (_, i) => `${i} ${"warm up text ".repeat(200)}`);
      const body = task === TASKS.pair ? { texts, text_pairs: texts } : { texts };
      expect((await classify(task, JSON.stringify(body))).status).toBe(200);
    }
    for (let i = 0; i < 20; i++) await stillServes();
    before = memoryAfterGc();
  });

  it("POST /classify: any body, any content type → 200 or a 4xx error body, and the server keeps serving", async () => {
    await fc.assert(
      fc.asyncProperty(
        classifyBody,
        contentType,
        fc.constantFrom<string>(TASKS.single, TASKS.single, TASKS.pair, TASKS.prefix, TASKS.regress),
        async (body, type, task) => {
          tally.classify++;
          const res = await classify(task, body as BodyInit, type);
          let parsed: unknown;
          try {
            parsed = JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body));
          } catch {
            parsed = undefined;
          }
          await checkResponse(res, `classify ${task} ${String(body).slice(0, 200)}`, expectedTexts(parsed));
          await stillServes();
        },
      ),
      fcOptions(200),
    );
  });

  it("POST /classify with well-formed bodies of hostile texts (control chars, lone surrogates, empty, long) → always 200", async () => {
    const texts = fc.array(text, { minLength: 1, maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<string>(TASKS.single, TASKS.pair, TASKS.prefix, TASKS.regress),
        texts,
        fc.boolean(),
        async (task, list, single) => {
          tally.classify++;
          const pair = task === TASKS.pair;
          const body = single
            ? { text: list[0], ...(pair ? { text_pair: list[list.length - 1] } : {}) }
            : { texts: list, ...(pair ? { text_pairs: [...list].reverse() } : {}) };
          const res = await classify(task, JSON.stringify(body));
          await checkResponse(res, `classify ${task} ${JSON.stringify(body).slice(0, 300)}`, single ? 1 : list.length);
          expect(res.status).toBe(200);
        },
      ),
      fcOptions(150),
    );
    await stillServes();
  });

  it("POST /classify?task=<hostile>: 400 invalid_task_name or 404 unknown_task, never more", async () => {
    await fc.assert(
      fc.asyncProperty(hostileName, encoding, fc.boolean(), async (name, encode, twice) => {
        tally.query++;
        // `twice`: a second, valid task makes it a multi-task call ({"results": [...]} on 200).
        const q = twice ? `${encode(name)}&task=${TASKS.single}` : encode(name);
        const res = await classify(q, JSON.stringify({ text: "hello" }), "application/json", true);
        const asked = new URL(`http://x/?task=${q}`).searchParams.getAll("task");
        if (res.status === 200 && asked.length > 1) {
          const body = (await res.json()) as { results: { task: string; predictions: unknown[] }[] };
          expect(body.results.map((r) => r.task)).toEqual(asked);
          for (const r of body.results) expect(r.predictions).toHaveLength(1);
          expect(asked.every((t) => EXISTING.has(t))).toBe(true);
          return;
        }
        const code = await checkResponse(res, `classify ?task=${q}`, 1);
        if (res.status !== 200)
          expect([
            "invalid_task_name",
            "unknown_task",
            "route_not_found",
            "invalid_request",
            "duplicate_task",
          ]).toContain(code);
        else expect(asked.every((t) => EXISTING.has(t))).toBe(true);
      }),
      fcOptions(200),
    );
    await stillServes();
  });

  it("admin routes with hostile task names, any auth and any body: no 5xx and nothing written anywhere", async () => {
    const validOther = servableAdapterBytes(rig.engine.assets, { task: TASKS.single, seed: 7 });
    const method = fc.constantFrom("GET", "PUT", "DELETE", "POST-rollback", "GET-list");
    const authHeader = fc.constantFrom<Record<string, string>>(
      adminHeaders,
      adminHeaders,
      adminHeaders,
      {},
      { authorization: "Bearer wrong-token" },
      { authorization: "Basic dXNlcjpwYXNz" },
      { authorization: "Bearer " },
      { authorization: `Bearer ${"x".repeat(5000)}` },
    );
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 400 }),
      fc.constant(validOther), // another task's valid adapter: task_mismatch (or an invalid name first)
      fc.jsonValue({ maxDepth: 2 }).map((v) => new TextEncoder().encode(JSON.stringify(v))),
      fc.constant(new Uint8Array(0)),
    );
    const type = fc.constantFrom(
      "application/octet-stream",
      "application/octet-stream",
      "application/json",
      "text/plain",
      "application/x-python-pickle",
    );
    await fc.assert(
      fc.asyncProperty(
        hostileName,
        encoding,
        method,
        authHeader,
        body,
        type,
        async (name, encode, m, auth, bytes, ctype) => {
          const segment = encode(name);
          const path =
            m === "GET-list"
              ? `/admin/adapters${segment ? `?x=${segment}` : ""}`
              : `/admin/adapters/${segment}${m === "POST-rollback" ? "/rollback" : ""}`;
          // The client's URL parser drops tabs/newlines and resolves dot segments before the server sees
          // anything; skip inputs that become a real request against an existing task (DELETE would work).
          const sent = new URL(path, "http://localhost").pathname.split("/").map((p) => decodedName(decodedName(p)));
          if (sent.some((p) => EXISTING.has(p))) return;
          tally.admin++;
          const httpMethod = m === "GET-list" ? "GET" : m === "POST-rollback" ? "POST" : m;
          const init: RequestInit = { method: httpMethod, headers: { ...auth, "content-type": ctype } };
          if (httpMethod === "PUT" || httpMethod === "POST") init.body = bytes as Uint8Array<ArrayBuffer>;
          const res = await rig.app.request(path, init);
          await checkResponse(res, `${httpMethod} ${path}`);
          expect(await listTree(rig.root)).toEqual(baselineTree);
        },
      ),
      fcOptions(250),
    );
    await stillServes();
  });

  it("PUT /admin/adapters/<unknown valid task> with hostile bodies (authorized): 4xx, no file, no version, no task", async () => {
    const valid = servableAdapterBytes(rig.engine.assets, { task: "fuzz-upload", seed: 8 });
    const body = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 600 }),
      // A valid adapter with a few bytes overwritten or cut off.
      fc
        .tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat())
        .map(([edits, cut]) => {
          const b = valid.slice(0, cut % 3 === 0 ? valid.length - (cut % 977) : valid.length);
          for (const [pos, byte] of edits) b[pos % Math.min(b.length, 4096)] = byte; // header region mostly
          return b;
        }),
    );
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/), body, async (task, bytes) => {
        if (EXISTING.has(task) || task === "fuzz-upload") return;
        tally.admin++;
        const res = await rig.app.request(`/admin/adapters/${task}`, {
          method: "PUT",
          headers: { ...adminHeaders, "content-type": "application/octet-stream" },
          body: bytes,
        });
        const code = await checkResponse(res, `PUT ${task}`);
        expect(res.status, code).toBeGreaterThanOrEqual(400);
        expect(await listTree(rig.root)).toEqual(baselineTree);
        expect(rig.engine.hasTask(task)).toBe(false);
      }),
      fcOptions(150),
    );
  });

  it("memory stays bounded over the whole run (heap after GC, RSS, array buffers)", async () => {
    const after = memoryAfterGc();
    const growth = (k: keyof NodeJS.MemoryUsage) => (after[k] - before[k]) / 2 ** 20;
    const show = (k: keyof NodeJS.MemoryUsage) =>
      `${k} ${(before[k] / 2 ** 20).toFixed(0)} → ${(after[k] / 2 ** 20).toFixed(0)} MB (${growth(k) >= 0 ? "+" : ""}${growth(k).toFixed(1)})`;
    console.log(`[http-fuzz] memory over the fuzz runs: ${show("rss")}, ${show("heapUsed")}, ${show("arrayBuffers")}`);
    expect(growth("rss")).toBeLessThan(200);
    expect(growth("heapUsed")).toBeLessThan(50);
    expect(growth("arrayBuffers")).toBeLessThan(100);
  });
});

// Runs last: closing the HTTP server closes the engine too.
describe("cut-off requests on a real HTTP server (loopback, raw sockets)", () => {
  let running: RunningServer;
  const logLines: string[] = [];
  const metrics = createMetrics({ collectDefaults: false });

  beforeAll(async () => {
    const logger = createLogger({ level: "debug", destination: { write: (line: string) => void logLines.push(line) } });
    const app = createApp({ service: rig.engine, metrics, config: rig.config, logger });
    // With the /classify fast lane, as `skt serve` runs by default: cut bodies with a Content-Length
    // reach the lane's body reader, chunked ones the app's.
    const fastLane = classifyFastLane({ service: rig.engine, metrics, config: rig.config, logger }, app);
    running = await startServer(app, { ...rig.config, port: 0, host: "127.0.0.1" }, rig.engine, logger, {
      handleSignals: false,
      fastLane,
    });
  });
  afterAll(async () => {
    await running?.close();
  });

  /** Chunked framing of `body` in pieces of `size` bytes, without the final zero-length chunk. */
  function chunked(body: Buffer, size: number): Buffer {
    const parts: Buffer[] = [];
    for (let at = 0; at < body.length; at += size) {
      const piece = body.subarray(at, at + size);
      parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n"));
    }
    return Buffer.concat(parts);
  }

  it("classify bodies and uploads cut anywhere, ended any way: nothing or a 4xx JSON error, never a 5xx, an error log or a write", async () => {
    const upload = Buffer.from(servableAdapterBytes(rig.engine.assets, { task: "fuzz-cut", seed: 21 }));
    const request = fc.record({
      kind: fc.constantFrom("classify", "classify", "upload"),
      texts: fc.array(text, { minLength: 1, maxLength: 4 }),
      framing: fc.constantFrom("length", "chunked"),
      chunkSize: fc.integer({ min: 1, max: 4096 }),
      cut: fc.nat(),
      ending: fc.constantFrom("destroy", "half-close", "bad-chunk", "junk"),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        tally.fixed++;
        const body = r.kind === "upload" ? upload : Buffer.from(JSON.stringify({ texts: r.texts }));
        const target = r.kind === "upload" ? "PUT /admin/adapters/fuzz-cut" : `POST /classify?task=${TASKS.single}`;
        const type =
          r.kind === "upload"
            ? `Authorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/octet-stream`
            : "Content-Type: application/json";
        const framed = r.framing === "chunked" ? chunked(body, r.chunkSize) : body;
        const head = `${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${type}\r\n${r.framing === "chunked" ? "Transfer-Encoding: chunked" : `Content-Length: ${body.length}`}\r\n\r\n`;
        const sent = framed.subarray(0, r.cut % framed.length); // never the whole body
        const parts: (string | Uint8Array)[] = [head, sent];
        if (r.ending === "bad-chunk") parts.push(r.framing === "chunked" ? "\r\nzz\r\n" : "");
        if (r.ending === "junk") parts.push("\u0000\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        const then = r.ending === "destroy" ? "destroy" : r.ending === "half-close" ? "half-close" : "read";
        // A server still waiting for the rest of the body answers nothing: the client then gives up
        // after a moment, which is one more way of going away.
        const raw = await rawExchange(running.port, parts, { then, readForMs: 400 });
        if (raw !== "") {
          const status = parseRawResponse(raw).status;
          expect(status, raw.slice(0, 200)).toBeGreaterThanOrEqual(400);
          expect(status, raw.slice(0, 200)).toBeLessThan(500);
          expectRawError(raw, status);
        }
      }),
      fcOptions(120),
    );
    // Let the server notice every connection's end before reading its counters (set-up, not a measurement).
    await new Promise((r) => setTimeout(r, 1500));
    const exposition = await metrics.registry.metrics();
    for (const status of ["500", "502", "503", "504", "507"])
      expect(metricValue(exposition, "skt_requests_total", { status }), status).toBe(0);
    expect(metricValue(exposition, "skt_uploads_total", { outcome: "error" })).toBe(0);
    expect(
      metricValue(exposition, "skt_requests_total", { status: "499" }) +
        metricValue(exposition, "skt_uploads_total", { outcome: "client_closed" }),
    ).toBeGreaterThan(0);
    console.log(
      `[http-fuzz] cut-off requests: classify statuses ${JSON.stringify(Object.fromEntries(["400", "408", "413", "499"].map((s) => [s, metricValue(exposition, "skt_requests_total", { status: s })])))}, uploads client_closed ${metricValue(exposition, "skt_uploads_total", { outcome: "client_closed" })}, invalid ${metricValue(exposition, "skt_uploads_total", { outcome: "invalid" })}`,
    );
    const bad = logLines.filter((l) => /"level":"(error|fatal)"|"stack"/.test(l));
    expect(bad.slice(0, 3)).toEqual([]);
    expect(await listTree(rig.root)).toEqual(baselineTree);
    const ok = await fetch(`http://127.0.0.1:${running.port}/classify?task=${TASKS.single}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"text":"still here"}',
    });
    expect(ok.status).toBe(200);
  });
});
