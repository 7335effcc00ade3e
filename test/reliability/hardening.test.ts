/**
 * Issue 18's defects, each reproduced as reported, against the real server process on loopback
 * (raw sockets where fetch cannot send what the reproduction needs), plus the two that need the
 * store's file system or the probe reached in-process.
 *
 *  1. aborted request bodies (classify and uploads) are 499 client_closed, never 5xx or a stack;
 *  2. finite but huge adapter values are refused at upload (bound, then the probe pass);
 *  4. a megabyte prompt_text is refused before it is tokenized;
 *  5. labels named __proto__, constructor, toString all appear in `scores`;
 *  6. a deleted task's series leave /metrics;
 *  7. skt_queue_depth returns to 0 when queued requests are cancelled;
 *  8. 408 for an unfinished body, JSON bodies for parser errors and `OPTIONS *`, /readyz 503s at
 *     debug without a stack, EMFILE → 503 without paths;
 *  9. SIGTERM does not wait for connections whose request was never received completely;
 *  and duplicate keys in the safetensors header are refused.
 */
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdapterStore } from "../../src/adapters/store.js";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { launchServerProcess, waitUntilReady } from "../../scripts/lib/server-process.js";
import { errnoError, hookedFs } from "../helpers/hooked-fs.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { rawFile, setTensorValues, splitFile } from "../helpers/random-adapter.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import {
  ADMIN_TOKEN,
  adminHeaders,
  expectErrorBody,
  expectRawError,
  metricValue,
  parseRawResponse,
  rawExchange,
  spawnServer,
  startEngineRig,
  type ServerProcess,
} from "./helpers.js";

const REQUEST_TIMEOUT_MS = 1500;
let assets: BackboneAssets;
let adaptersDir: string;
let server: ServerProcess;

const octet = { ...adminHeaders, "content-type": "application/octet-stream" };
const put = (task: string, bytes: Uint8Array) =>
  fetch(`${server.base}/admin/adapters/${task}`, { method: "PUT", headers: octet, body: Buffer.from(bytes) });
const classify = (task: string, body: unknown) =>
  fetch(`${server.base}/classify?task=${task}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const metrics = async () => (await fetch(`${server.base}/metrics`)).text();

/** Log lines of the server process that show a failure handled as a server error. */
function serverErrorLines(output: string): string[] {
  return output.split("\n").filter((l) => /"level":"(error|fatal)"|"stack"|unhandled error/.test(l));
}

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
  adaptersDir = await mkdtemp(path.join(os.tmpdir(), "skt-hard-"));
  server = await spawnServer({
    adaptersDir,
    env: { SKT_LOG_LEVEL: "info", SKT_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) },
  });
  expect(
    (await put("spam", servableAdapterBytes(assets, { task: "spam", labels: ["ham", "spam"], seed: 3 }))).status,
  ).toBe(201);
});

afterAll(async () => {
  await server?.kill();
  await rm(adaptersDir, { recursive: true, force: true });
});

/** A classify request's head and body, for raw sockets. */
function classifyRequest(body: string, framing: "chunked" | "length"): { head: string; body: string } {
  const head =
    `POST /classify?task=spam HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    (framing === "chunked"
      ? "Transfer-Encoding: chunked\r\n\r\n"
      : `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
  return { head, body };
}

describe("defect 1: a client that goes away mid-body is 499 client_closed, never a 5xx", () => {
  it("200 classify requests cut off in three ways, 10 uploads cut off: no 5xx, no stack, counted as their own outcome", async () => {
    const before = await metrics();
    const outputBefore = server.output().length;
    const body = JSON.stringify({ text: "win a free prize now" });
    const sends: Promise<string>[] = [];
    for (let i = 0; i < 200; i++) {
      const mode = i % 4;
      if (mode === 0) {
        // The reproduction: one chunk of an unfinished JSON body, then the socket closes.
        const { head } = classifyRequest(body, "chunked");
        sends.push(rawExchange(server.port, [head, '8\r\n{"text":\r\n'], { then: "destroy" }));
      } else if (mode === 1) {
        // A declared length that never arrives.
        const { head } = classifyRequest(body, "length");
        sends.push(rawExchange(server.port, [head, body.slice(0, 7)], { then: "destroy" }));
      } else if (mode === 2) {
        // Half-close: the client ends its side mid-body and waits for an answer.
        const { head } = classifyRequest(body, "chunked");
        sends.push(rawExchange(server.port, [head, '8\r\n{"text":\r\n'], { then: "half-close", readForMs: 5000 }));
      } else {
        // A bad chunk size: Node's parser refuses it; the client gets a JSON 400.
        const { head } = classifyRequest(body, "chunked");
        sends.push(rawExchange(server.port, [head, '8\r\n{"text":\r\n', "zz\r\n"], { readForMs: 5000 }));
      }
    }
    const answers = await Promise.all(sends);
    answers.forEach((raw, i) => {
      if (i % 4 === 3) expect(expectRawError(raw, 400)).toBe("malformed_http");
      else if (raw !== "") expect(parseRawResponse(raw).status).toBeLessThan(500);
    });

    // Authenticated uploads cut off mid-body.
    const file = Buffer.from(servableAdapterBytes(assets, { task: "spam", labels: ["ham", "spam"], seed: 4 }));
    const uploadHead = `PUT /admin/adapters/spam HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${file.length}\r\n\r\n`;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        rawExchange(server.port, [uploadHead, file.subarray(0, file.length >> 1)], { then: "destroy" }),
      ),
    );

    // The server has seen every one of them once the counters add up (no timing involved).
    const classifyCount = (m: string) => metricValue(m, "skt_requests_total", { task: "spam" });
    const uploadCount = (m: string) => metricValue(m, "skt_uploads_total");
    let after = await metrics();
    while (classifyCount(after) - classifyCount(before) < 200 || uploadCount(after) - uploadCount(before) < 10) {
      await new Promise((r) => setTimeout(r, 100));
      after = await metrics();
    }
    const delta = (labels: Record<string, string>, name = "skt_requests_total") =>
      metricValue(after, name, labels) - metricValue(before, name, labels);
    for (const status of ["500", "502", "503", "504", "507"]) expect(delta({ status }), `status ${status}`).toBe(0);
    expect(delta({ task: "spam", status: "499" })).toBeGreaterThanOrEqual(100); // the destroyed ones
    expect(delta({ task: "spam", status: "400" })).toBeGreaterThanOrEqual(50); // the bad chunk sizes
    expect(delta({ outcome: "error" }, "skt_uploads_total")).toBe(0);
    expect(delta({ outcome: "client_closed" }, "skt_uploads_total")).toBe(10);
    expect(serverErrorLines(server.output().slice(outputBefore))).toEqual([]);
    expect((await classify("spam", { text: "still serving" })).status).toBe(200);
  });
});

describe("defect 8: error shapes on the connection", () => {
  it("a classify body that never finishes gets 408 request_timeout, not 504", async () => {
    const { head } = classifyRequest('{"text":"a slow client"}', "length");
    const raw = await rawExchange(
      server.port,
      [head.replace(/Content-Length: \d+/, "Content-Length: 200"), '{"text":"a sl'],
      { readForMs: REQUEST_TIMEOUT_MS + 20_000 },
    );
    expect(expectRawError(raw, 408)).toBe("request_timeout");
  });

  it("Node's parser errors and OPTIONS * answer with the JSON error body", async () => {
    expect(expectRawError(await rawExchange(server.port, ["GARBAGE\r\n\r\n"]), 400)).toBe("malformed_http");
    expect(
      expectRawError(
        await rawExchange(server.port, ["GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"]),
        400,
      ),
    ).toBe("malformed_http");
    expect(
      expectRawError(
        await rawExchange(server.port, [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`]),
        431,
      ),
    ).toBe("headers_too_large");
    expect(expectRawError(await rawExchange(server.port, ["OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"]), 400)).toBe(
      "bad_request_target",
    );
    expect((await classify("spam", { text: "still serving" })).status).toBe(200);
  });
});

describe("defect 2: finite but huge adapter values are refused at upload", () => {
  it("proj.bias = 1e38, pool.bias = 1e38 and alternating ±3e38 → 422 value_out_of_range; the current version keeps serving", async () => {
    const base = servableAdapterBytes(assets, { task: "spam", labels: ["ham", "spam"], seed: 5 });
    const cases: [string, (i: number) => number][] = [
      ["proj.bias", () => 1e38],
      ["pool.bias", () => 1e38],
      ["proj.bias", (i) => (i % 2 ? -3e38 : 3e38)],
      ["head.weight", () => 1e4 * 1.001],
    ];
    for (const [tensor, value] of cases) {
      const res = await put("spam", setTensorValues(base, tensor, value));
      expect(res.status, tensor).toBe(422);
      const err = await expectErrorBody(res);
      expect(err.code).toBe("value_out_of_range");
      expect(err.details).toMatchObject({ tensor });
    }
    const res = await classify("spam", { text: "win a free prize now" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      adapter_version: number;
      predictions: { score: number; scores: Record<string, number> }[];
    };
    expect(body.adapter_version).toBe(1);
    for (const n of [body.predictions[0].score, ...Object.values(body.predictions[0].scores)])
      expect(Number.isFinite(n)).toBe(true);
  });
});

describe("defect 5: labels with JavaScript-special names", () => {
  it.each([[["__proto__", "b"]], [["constructor", "toString", "hasOwnProperty", "__proto__", "valueOf"]]])(
    "labels %j all appear in scores, with probabilities that sum to 1",
    async (labels) => {
      const task = `proto-${labels.length}`;
      expect((await put(task, servableAdapterBytes(assets, { task, labels, seed: 6 }))).status).toBe(201);
      const res = await classify(task, { texts: ["one text", "another text"] });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { predictions: { label: string; scores: Record<string, number> }[] };
      for (const p of body.predictions) {
        expect(Object.keys(p.scores).sort()).toEqual([...labels].sort());
        expect(labels).toContain(p.label);
        const sum = Object.values(p.scores).reduce((a, b) => a + b, 0);
        expect(sum).toBeCloseTo(1, 6);
      }
    },
  );
});

describe("defect 4: a huge prompt_text is refused before it is tokenized", () => {
  it.each([
    ["\ufdfa × 345,000 (NFKC makes 18 characters of each)", "\ufdfa".repeat(345_000)],
    ["中 × 340,000 (folds into 2 tokens)", "中".repeat(340_000)],
    ["1,025 ASCII characters", "a".repeat(1025)],
    ["1,000 CJK characters (3,000 bytes)", "中".repeat(1000)],
  ])("%s → 422 bad_metadata on prompt_text", async (_what, promptText) => {
    const { header, data } = splitFile(
      servableAdapterBytes(assets, { task: "spam", labels: ["ham", "spam"], seed: 7 }),
    );
    header.__metadata__.prompt_text = promptText;
    const res = await put("spam", rawFile(header, data));
    expect(res.status).toBe(422);
    const err = await expectErrorBody(res);
    expect(err.code).toBe("bad_metadata");
    expect(err.details).toMatchObject({ field: "prompt_text" });
    expect(err.message.length).toBeLessThan(1000);
  });
});

describe("duplicate keys in the safetensors header", () => {
  it("a second head.bias entry, or task twice in the metadata → 422 duplicate_key", async () => {
    const bytes = servableAdapterBytes(assets, { task: "spam", labels: ["ham", "spam"], seed: 8 });
    const { header, data } = splitFile(bytes);
    const text = JSON.stringify(header);
    const headBias = JSON.stringify(header["head.bias"]);
    const twoBiases = text.replace(`"head.bias":${headBias}`, `"head.bias":${headBias},"head.bias":${headBias}`);
    const twoTasks = text.replace('"task":"spam"', '"task":"other","task":"spam"');
    for (const [what, headerText, key] of [
      ["head.bias", twoBiases, "head.bias"],
      ["task", twoTasks, "task"],
    ] as const) {
      expect(headerText, what).not.toBe(text);
      const res = await put("spam", rawFile(headerText, data));
      expect(res.status, what).toBe(422);
      const err = await expectErrorBody(res);
      expect(err.code).toBe("duplicate_key");
      expect(err.details).toMatchObject({ key });
    }
  });
});

describe("defect 6: a deleted task's series leave /metrics", () => {
  it("create, classify and delete 20 tasks: none of their series stays", async () => {
    const baseline = await metrics();
    const tasks = Array.from({ length: 20 }, (_, i) => `gone-${i}`);
    for (const task of tasks) {
      expect(
        (await put(task, servableAdapterBytes(assets, { task, seed: 9, promptText: `task number ${task} :` }))).status,
      ).toBe(201);
      expect((await classify(task, { text: "hello" })).status).toBe(200);
      expect((await classify(task, { texts: [] })).status).toBe(400);
    }
    const full = await metrics();
    for (const task of tasks) expect(full).toContain(`task="${task}"`);
    for (const task of tasks)
      expect(
        (await fetch(`${server.base}/admin/adapters/${task}`, { method: "DELETE", headers: adminHeaders })).status,
      ).toBe(204);
    const after = await metrics();
    for (const task of tasks) expect(after).not.toContain(`task="${task}"`);
    const seriesOf = (m: string) => m.split("\n").filter((l) => l.startsWith("skt_") && l.includes('task="')).length;
    expect(seriesOf(after)).toBe(seriesOf(baseline));
  });
});

describe("a second process: start-up, queue depth after cancellations, shutdown with half-sent requests", () => {
  let second: ServerProcess | undefined;
  let dir: string;

  afterAll(async () => {
    await second?.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("defect 8: /readyz 503s while starting are JSON not_ready, logged at debug without a stack", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "skt-hard2-"));
    second = await launchServerProcess({
      adaptersDir: dir,
      env: {
        SKT_ADMIN_TOKEN: ADMIN_TOKEN,
        SKT_MODELS_DIR: MODELS_DIR,
        SKT_THREADS: "1",
        SKT_LOG_LEVEL: "debug",
        // Rows wait for company for a minute: cancelled ones are still queued when they go.
        SKT_MAX_WAIT_MS: "60000",
        SKT_SHUTDOWN_TIMEOUT_MS: "600000",
      },
    });
    let notReady = 0;
    for (;;) {
      const res = await fetch(`${second.base}/readyz`).catch(() => null);
      if (res?.status === 200) break;
      if (res) {
        expect(res.status).toBe(503);
        expect((await expectErrorBody(res)).code).toBe("not_ready");
        notReady++;
      }
      if (second.proc.exitCode !== null) throw new Error(`exited:\n${second.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitUntilReady(second, 1000);
    const readyzLines = second
      .output()
      .split("\n")
      .filter((l) => l.includes('"/readyz"') || l.includes('"not_ready"'));
    if (notReady > 0) expect(readyzLines.length).toBeGreaterThan(0);
    for (const l of readyzLines) expect(l).toMatch(/"level":"debug"/);
    expect(serverErrorLines(second.output())).toEqual([]);
    expect(second.output()).not.toMatch(/"level":"warn".*readyz/);
  });

  it("defect 7: 30 queued requests whose clients go away leave skt_queue_depth at 0", async () => {
    const base = second!.base;
    expect(
      (
        await fetch(`${base}/admin/adapters/q`, {
          method: "PUT",
          headers: octet,
          body: Buffer.from(servableAdapterBytes(assets, { task: "q", seed: 10 })),
        })
      ).status,
    ).toBe(201);
    const body = JSON.stringify({ text: "waiting in the queue" });
    const head = `POST /classify?task=q HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const scrape = async () => (await fetch(`${base}/metrics`)).text();
    // Complete requests on connections that close once the rows are queued.
    const sockets = await Promise.all(
      Array.from(
        { length: 30 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect(second!.port, "127.0.0.1", () => s.write(head + body, () => resolve(s)));
            s.on("error", () => undefined);
          }),
      ),
    );
    while (metricValue(await scrape(), "skt_queue_depth") < 25) await new Promise((r) => setTimeout(r, 50));
    for (const s of sockets) s.destroy();
    const answered = (m: string) => metricValue(m, "skt_requests_total", { task: "q" });
    let m = await scrape();
    while (answered(m) < 30) {
      await new Promise((r) => setTimeout(r, 50));
      m = await scrape();
    }
    expect(metricValue(m, "skt_requests_total", { task: "q", status: "499" })).toBeGreaterThanOrEqual(25);
    expect(metricValue(m, "skt_queue_depth")).toBe(0);
  });

  it("defect 9: SIGTERM with half-sent headers, a half-sent upload and an idle connection exits without waiting for them", async () => {
    const port = second!.port;
    const file = Buffer.from(servableAdapterBytes(assets, { task: "q", seed: 11 }));
    const held = [
      rawExchange(port, ["POST /classify?task=q HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-"], { readForMs: 600_000 }),
      rawExchange(
        port,
        [
          `PUT /admin/adapters/q HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${file.length}\r\n\r\n`,
          file.subarray(0, 1000),
        ],
        { readForMs: 600_000 },
      ),
      rawExchange(port, ["GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"], { readForMs: 600_000 }),
    ];
    // A moment for the bytes to reach the server (set-up, not a measurement).
    await new Promise((r) => setTimeout(r, 500));
    second!.proc.kill("SIGTERM");
    // With a 10-minute shutdown timeout, only dropping those connections lets it exit within the test's time.
    expect((await second!.exited).code).toBe(0);
    const out = second!.output();
    expect(out).toMatch(/dropped connections whose request was not received completely/);
    expect(out).not.toMatch(/shutdown timeout reached/);
    await Promise.all(held);
  }, 90_000);
});

describe("in-process: the probe pass and running out of descriptors", () => {
  it("with the value bound lifted, the issue's 1e38 adapter is refused by the probe (non-finite outputs) and nothing is stored", async () => {
    const rig = await startEngineRig({}, { maxAbsAdapterValue: Infinity });
    try {
      const base = servableAdapterBytes(rig.engine.assets, { task: "spam", labels: ["ham", "spam"], seed: 12 });
      expect(
        (
          await rig.app.request("/admin/adapters/spam", {
            method: "PUT",
            headers: octet,
            body: base as Uint8Array<ArrayBuffer>,
          })
        ).status,
      ).toBe(201);
      for (const [tensor, value] of [
        ["proj.bias", () => 1e38],
        ["pool.bias", (i: number) => (i % 2 ? -3e38 : 3e38)],
      ] as const) {
        const res = await rig.app.request("/admin/adapters/spam", {
          method: "PUT",
          headers: octet,
          body: setTensorValues(base, tensor, value) as Uint8Array<ArrayBuffer>,
        });
        expect(res.status, tensor).toBe(422);
        expect((await expectErrorBody(res)).code).toBe("non_finite_output");
      }
      expect((await rig.engine.adapterDetails("spam")).versions.map((v) => v.version)).toEqual([1]);
      const ok = await rig.app.request("/classify?task=spam", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"text":"fine"}',
      });
      expect(ok.status).toBe(200);
    } finally {
      await rig.close();
    }
  });

  it("EMFILE on an admin call → 503 too_many_open_files, without the store's path", async () => {
    let failing = false;
    const dir = await mkdtemp(path.join(os.tmpdir(), "skt-emfile-"));
    const store = new AdapterStore(dir, {
      fs: hookedFs((c) => {
        if (failing && (c.op === "readFile" || c.op === "open" || c.op === "readdir" || c.op === "stat"))
          throw errnoError("EMFILE", c.path);
      }),
    });
    const rig = await startEngineRig({}, { store });
    try {
      expect(
        (
          await rig.app.request("/admin/adapters/emf", {
            method: "PUT",
            headers: octet,
            body: servableAdapterBytes(rig.engine.assets, { task: "emf", seed: 13 }) as Uint8Array<ArrayBuffer>,
          })
        ).status,
      ).toBe(201);
      failing = true;
      const calls: [string, RequestInit][] = [
        ["/admin/adapters/emf", { headers: adminHeaders }],
        [
          "/admin/adapters/emf",
          {
            method: "PUT",
            headers: octet,
            body: servableAdapterBytes(rig.engine.assets, { task: "emf", seed: 14 }) as Uint8Array<ArrayBuffer>,
          },
        ],
      ];
      for (const [url, init] of calls) {
        const res = await rig.app.request(url, init);
        expect(res.status, `${init.method ?? "GET"} ${url}`).toBe(503);
        const err = await expectErrorBody(res);
        expect(err.code).toBe("too_many_open_files");
        expect(err.message).not.toContain(dir);
        expect(err.message).not.toMatch(/\/tmp|\/work|\/home/);
      }
    } finally {
      failing = false;
      await rig.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
