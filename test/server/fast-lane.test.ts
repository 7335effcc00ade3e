/**
 * The /classify fast lane (src/server/classify-fast-lane.ts) against the app it stands in for: the
 * same requests sent over HTTP to a server with the lane and to one without, both around one fake
 * service, must get the same status, body and headers, move the same metrics and write the same
 * log lines — for the shapes the lane serves and for everything it hands to the app. Its body
 * validator must never accept what the route's zod schema refuses.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultConfig, type ServerConfig } from "../../src/config.js";
import { SktError } from "../../src/errors.js";
import { createMetrics, type SktMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
import { classifyFastLane, fastClassifyBody } from "../../src/server/classify-fast-lane.js";
import { classifySchemas } from "../../src/server/routes/classify.js";
import { startServer, type RunningServer } from "../../src/server/serve.js";
import { parseMetrics } from "../../scripts/lib/prometheus.js";
import { seededRandom } from "../../src/random.js";
import { FakeInferenceService } from "../helpers/fake-service.js";
import { withContractCheck } from "../helpers/openapi-contract.js";
import { capturingLogger } from "./setup.js";

interface Side {
  server: RunningServer;
  metrics: SktMetrics;
  logs: Record<string, unknown>[];
  /** Requests the lane took (served itself or forwarded with their body). */
  taken: number;
}

const CONFIG: Partial<ServerConfig> = { maxTexts: 4, maxTextChars: 40, requestTimeoutMs: 300, retryAfterSeconds: 3 };
const service = new FakeInferenceService();
let fast: Side;
let plain: Side;

async function side(withLane: boolean): Promise<Side> {
  const { logger, logs } = capturingLogger();
  const metrics = createMetrics({ collectDefaults: false });
  const config = defaultConfig({ ...CONFIG, host: "127.0.0.1", port: 0 });
  const app = withContractCheck(createApp({ service, metrics, config, logger }));
  const s = { metrics, logs, taken: 0 } as Side;
  const lane = classifyFastLane({ service, metrics, config, logger }, app);
  s.server = await startServer(app, config, service, logger, {
    handleSignals: false,
    fastLane: withLane
      ? (req, res) => {
          const took = lane(req, res);
          if (took) s.taken++;
          return took;
        }
      : undefined,
  });
  return s;
}

beforeAll(async () => {
  fast = await side(true);
  plain = await side(false);
});
afterAll(async () => {
  await fast.server.close();
  await plain.server.close();
});

interface Exchange {
  status: number;
  body: unknown;
  headers: Record<string, string | null>;
}

const HEADERS = ["content-type", "retry-after", "connection"];

async function send(s: Side, path: string, body: string, headers: Record<string, string>): Promise<Exchange> {
  const res = await fetch(`http://127.0.0.1:${s.server.port}${path}`, { method: "POST", headers, body });
  const text = await res.text();
  return {
    status: res.status,
    body: JSON.parse(text),
    headers: Object.fromEntries(HEADERS.map((h) => [h, res.headers.get(h)])),
  };
}

/** Metric samples for /classify requests, as text lines (label order is stable). */
async function requestSamples(s: Side): Promise<Map<string, number>> {
  const samples = parseMetrics(await s.metrics.registry.metrics());
  return new Map(
    samples
      .filter((x) => x.name === "skt_requests_total" || x.name === "skt_request_duration_seconds_count")
      .map((x) => [`${x.name}${JSON.stringify(x.labels)}`, x.value]),
  );
}

function requestLines(s: Side, from: number): Record<string, unknown>[] {
  return s.logs.slice(from).map(({ time: _t, reqId: _r, ms: _ms, ...rest }) => rest);
}

/** Sends the same request to both servers (`before` runs before each) and compares everything. */
async function both(
  path: string,
  body: string,
  headers: Record<string, string> = { "content-type": "application/json" },
  before: () => void = () => {},
  opts: { distinctLines?: boolean } = {},
): Promise<{ fast: Exchange; plain: Exchange; taken: boolean }> {
  const out: Exchange[] = [];
  const deltas: Map<string, number>[] = [];
  const lines: Record<string, unknown>[][] = [];
  const takenBefore = fast.taken;
  for (const s of [fast, plain]) {
    const m0 = await requestSamples(s);
    const l0 = s.logs.length;
    before();
    out.push(await send(s, path, body, headers));
    // The log line and metrics are written when the answer is; give the event loop a turn.
    await new Promise((r) => setTimeout(r, 20));
    const m1 = await requestSamples(s);
    const moved = [...m1].map(([k, v]): [string, number] => [k, v - (m0.get(k) ?? 0)]);
    deltas.push(new Map(moved.filter(([, d]) => d !== 0)));
    const written = requestLines(s, l0);
    lines.push(
      opts.distinctLines ? [...new Set(written.map((l) => JSON.stringify(l)))].map((l) => JSON.parse(l)) : written,
    );
  }
  expect(out[0]).toEqual(out[1]);
  expect(deltas[0]).toEqual(deltas[1]);
  expect(lines[0]).toEqual(lines[1]);
  return { fast: out[0], plain: out[1], taken: fast.taken > takenBefore };
}

const json = (v: unknown) => JSON.stringify(v);

describe("the /classify fast lane answers as the app does", () => {
  it("serves the common shapes itself, with the app's answers, metrics and log lines", async () => {
    const cases: [string, unknown][] = [
      ["/classify?task=sst2", { text: "a gripping, funny film" }],
      ["/classify?task=sst2", { texts: ["dull", "bright and warm", ""] }],
      ["/classify?task=stsb", { text: "two men are playing guitar" }],
      ["/classify?task=mnli", { text: "a man sleeps", text_pair: "nobody sleeps" }],
      ["/classify?task=mnli", { texts: ["a", "b"], text_pairs: ["c", "d"] }],
      ["/classify?task=sst2", { text: "x".repeat(CONFIG.maxTextChars!) }],
    ];
    for (const [path, body] of cases) {
      const r = await both(path, json(body));
      expect(r.fast.status, path).toBe(200);
      expect(r.taken).toBe(true);
    }
    const charset = await both("/classify?task=sst2", json({ text: "fine" }), {
      "content-type": "Application/JSON; charset=UTF-8",
    });
    expect(charset.fast.status).toBe(200);
    expect(charset.taken).toBe(true);
  });

  it("answers the service's failures as the app's error handler does", async () => {
    const failures: [string, () => void, number][] = [
      ["unknown task", () => {}, 404],
      ["overloaded", () => service.failNextWith("classify", "overloaded", "queue_full"), 429],
      ["not ready", () => service.failNextWith("classify", "not_ready"), 503],
      ["internal", () => service.failNextWith("classify", "internal"), 500],
      ["storage", () => service.failNextWith("classify", "storage", "disk_failed"), 507],
      [
        "unprocessable",
        () => service.failNext("classify", new SktError("unprocessable", "adapter_invalid", "no", { version: 3 })),
        422,
      ],
      ["a bug", () => service.failNext("classify", new Error("boom")), 500],
      ["timeout", () => service.failNextWith("classify", "timeout"), 504],
    ];
    for (const [name, arrange, status] of failures) {
      const task = name === "unknown task" ? "nosuchtask" : "sst2";
      const r = await both(`/classify?task=${task}`, json({ text: "hello" }), undefined, arrange);
      expect(r.fast.status, name).toBe(status);
      expect(r.taken, name).toBe(true);
    }
    const overloaded = await both("/classify?task=sst2", json({ text: "hi" }), undefined, () =>
      service.failNextWith("classify", "overloaded", "queue_full"),
    );
    expect(overloaded.fast.headers["retry-after"]).toBe("3");
    // A pair task without its pair, and a plain task given one: the service refuses, 400.
    expect((await both("/classify?task=mnli", json({ text: "a" }))).fast.status).toBe(400);
    expect((await both("/classify?task=sst2", json({ text: "a", text_pair: "b" }))).fast.status).toBe(400);
  });

  it("hands bodies it is not sure of to the app, which answers with zod's messages", async () => {
    const bodies = [
      "{",
      "[]",
      "null",
      json({}),
      json({ text: 1 }),
      json({ text: null }),
      json({ text: "a", texts: ["b"] }),
      json({ text: "a", extra: true }),
      json({ texts: [] }),
      json({ texts: ["a", "b", "c", "d", "e"] }),
      json({ texts: ["a", 2] }),
      json({ text: "x".repeat(CONFIG.maxTextChars! + 1) }),
      json({ texts: ["a", "b"], text_pairs: ["c"] }),
      json({ texts: ["a"], text_pair: "c" }),
      json({ text: "a", text_pairs: ["c"] }),
      json({ text: "a", text_pair: "b", text_pairs: ["c"] }),
      '{"__proto__": {"text": "a"}}',
      `\uFEFF${json({ text: "a byte-order mark" })}`,
    ];
    for (const body of bodies) {
      const r = await both("/classify?task=sst2", body);
      expect(r.taken, body).toBe(true);
      if (body.startsWith("\uFEFF")) expect(r.fast.status).toBe(200);
      else expect([400, 413], body).toContain(r.fast.status);
    }
  });

  it("leaves other targets, content types and bodies to the app untouched", async () => {
    const requests: [string, string, Record<string, string>][] = [
      ["/classify?task=sst2&task=stsb", json({ text: "a" }), { "content-type": "application/json" }],
      ["/classify?task=sst2&x=1", json({ text: "a" }), { "content-type": "application/json" }],
      ["/classify?task=Bad!", json({ text: "a" }), { "content-type": "application/json" }],
      ["/classify?task=ss%74", json({ text: "a" }), { "content-type": "application/json" }],
      ["/classify", json({ text: "a" }), { "content-type": "application/json" }],
      ["/classify?task=sst2", json({ text: "a" }), { "content-type": "text/plain" }],
      ["/classify?task=sst2", json({ text: "a" }), { "content-type": "application/vnd.api+json" }],
      ["/classify?task=sst2", json({ text: "a" }), {}],
      [
        "/classify?task=sst2",
        json({ texts: Array(2000).fill("x".repeat(40)) }),
        { "content-type": "application/json" },
      ],
    ];
    for (const [path, body, headers] of requests) {
      const r = await both(path, body, headers);
      expect(r.taken, `${path} ${JSON.stringify(headers)}`).toBe(false);
    }
  });

  it("keeps a safe X-Request-Id and replaces an unsafe one, as hono's requestId does", async () => {
    for (const s of [fast, plain]) {
      const given = await fetch(`http://127.0.0.1:${s.server.port}/classify?task=sst2`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": "abc-123=" },
        body: json({ text: "a" }),
      });
      expect(given.headers.get("x-request-id")).toBe("abc-123=");
      const unsafe = await fetch(`http://127.0.0.1:${s.server.port}/classify?task=sst2`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": "no spaces!" },
        body: json({ text: "a" }),
      });
      expect(unsafe.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      const line = s.logs.filter((l) => l.msg === "request").at(-1)!;
      expect(line.reqId).toBe(unsafe.headers.get("x-request-id"));
    }
  });

  it("answers 504 after the deadline and aborts the engine call, as the backstop does", async () => {
    service.hang = true;
    try {
      // The app writes its "request failed" line twice (the backstop's 504, then the aborted handler's
      // own rejection reaching hono's error handler); the lane once.
      const r = await both("/classify?task=sst2", json({ text: "slow" }), undefined, undefined, {
        distinctLines: true,
      });
      expect(r.fast.status).toBe(504);
      expect(r.taken).toBe(true);
    } finally {
      service.hang = false;
    }
  });

  it("answers 408 and closes when the body is still arriving at the deadline", async () => {
    const answers: string[] = [];
    for (const s of [fast, plain]) {
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(s.server.port, "127.0.0.1", () =>
          socket.write(
            'POST /classify?task=sst2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"text":',
          ),
        );
        let out = "";
        socket.on("data", (d: Buffer) => (out += d.toString()));
        socket.on("close", () => resolve(out));
        socket.on("error", reject);
      });
      const [head, body] = raw.split("\r\n\r\n");
      expect(head).toMatch(/^HTTP\/1.1 408/);
      expect(head.toLowerCase()).toContain("connection: close");
      answers.push(body);
    }
    expect(answers[0]).toBe(answers[1]);
    expect(JSON.parse(answers[0]).error.code).toBe("request_timeout");
  });

  it("aborts the engine call and records 499 when the client goes away", async () => {
    service.hang = true;
    try {
      for (const s of [fast, plain]) {
        const before = (await requestSamples(s)).get('skt_requests_total{"task":"sst2","status":"499"}') ?? 0;
        const calls = service.classifyCalls.length;
        const ac = new AbortController();
        const pending = fetch(`http://127.0.0.1:${s.server.port}/classify?task=sst2`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: json({ text: "gone" }),
          signal: ac.signal,
        }).catch(() => undefined);
        await expect.poll(() => service.classifyCalls.length).toBe(calls + 1);
        const signal = service.classifyCalls.at(-1)!.signal!;
        ac.abort();
        await pending;
        await expect.poll(() => signal.aborted).toBe(true);
        await expect
          .poll(async () => (await requestSamples(s)).get('skt_requests_total{"task":"sst2","status":"499"}') ?? 0)
          .toBe(before + 1);
      }
    } finally {
      service.hang = false;
    }
  });
});

describe("a failure while writing the answer", () => {
  it("is answered 500 in the project's shape, never an unhandled rejection", async () => {
    const { logger } = capturingLogger();
    const errors: unknown[] = [];
    // A logger whose request line throws (as pino's sync write does on a closed stdout, EPIPE).
    const broken = new Proxy(logger, {
      get(target, prop, receiver) {
        if (prop === "info")
          return () => {
            throw new Error("EPIPE");
          };
        if (prop === "error") return (obj: unknown) => errors.push(obj);
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const metrics = createMetrics({ collectDefaults: false });
    const config = defaultConfig({ ...CONFIG, host: "127.0.0.1", port: 0 });
    const app = createApp({ service, metrics, config, logger });
    const server = await startServer(app, config, service, logger, {
      handleSignals: false,
      fastLane: classifyFastLane({ service, metrics, config, logger: broken }, app),
    });
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/classify?task=sst2`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: json({ text: "fine" }),
      });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: { code: "internal", message: "Internal server error." } });
      expect(errors).toHaveLength(1);
      // The server still answers.
      const again = await fetch(`http://127.0.0.1:${server.port}/healthz`);
      expect(again.status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe("fastClassifyBody", () => {
  const limits = { maxTexts: 3, maxTextChars: 5 };
  const { body: schema } = classifySchemas(defaultConfig(limits));

  /** Values that are often almost right: strings at and past the limit, short lists, wrong types. */
  function randomValue(rand: () => number, depth = 0): unknown {
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
    const str = () => "abcdefg".slice(0, Math.floor(rand() * 8));
    const list = () =>
      Array.from({ length: Math.floor(rand() * 5) }, () => (rand() < 0.9 ? str() : pick([1, null, []])));
    if (depth > 0) return pick([str(), list(), 1, null, true]);
    if (rand() < 0.1) return pick([null, [], "text", 3]);
    const body: Record<string, unknown> = {};
    for (const key of ["text", "texts", "text_pair", "text_pairs", "other"]) {
      if (rand() < (key === "other" ? 0.05 : 0.4)) {
        body[key] = key.endsWith("s")
          ? rand() < 0.8
            ? list()
            : randomValue(rand, 1)
          : rand() < 0.85
            ? str()
            : randomValue(rand, 1);
      }
    }
    return body;
  }

  it("never accepts what the route's schema refuses, and agrees with it on what it accepts", () => {
    const rand = seededRandom(14);
    let accepted = 0;
    let refusedByBoth = 0;
    for (let i = 0; i < 20_000; i++) {
      const value = randomValue(rand);
      const mine = fastClassifyBody(value, limits);
      const zod = schema.safeParse(value);
      if (mine !== undefined) {
        accepted++;
        expect(zod.success, JSON.stringify(value)).toBe(true);
        expect(mine).toEqual(zod.data);
      } else if (!zod.success) refusedByBoth++;
      else throw new Error(`the lane refused a valid body: ${JSON.stringify(value)}`);
    }
    // Both kinds occur often enough for the check to mean something.
    expect(accepted).toBeGreaterThan(1_000);
    expect(refusedByBoth).toBeGreaterThan(1_000);
  });
});
