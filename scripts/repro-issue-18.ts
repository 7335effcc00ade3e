/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access -- it edits raw safetensors headers of any shape */
/**
 * Re-measures issue 18's reproductions against a fresh server process on loopback and prints one
 * line per defect (the figures in docs/reliability.md). Usage: `npx tsx scripts/repro-issue-18.ts
 * [--tasks 100]`. Timings depend on the machine's load; the counts do not.
 */
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { encodeAdapter } from "../src/adapters/format.js";
import { syntheticAdapter, syntheticAdapterBytes } from "../src/adapters/synthetic.js";
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { MODELS_DIR } from "./lib/paths.js";
import { spawnServerProcess, type ServerProcess } from "./lib/server-process.js";

const { values: args } = parseArgs({ options: { tasks: { type: "string", default: "100" } } });
const TOKEN = "repro-issue-18-token";

function send(
  port: number,
  parts: (string | Uint8Array)[],
  then: "destroy" | "read",
  readForMs = 5000,
): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let got = "";
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, readForMs);
    socket.on("data", (d) => (got += d.toString("latin1")));
    socket.on("close", done);
    socket.on("error", () => undefined);
    socket.on("connect", () => {
      void (async () => {
        for (const p of parts) await new Promise<void>((r) => socket.write(p, () => r()));
        if (then === "destroy") setTimeout(done, 30);
      })();
    });
  });
}

function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(name) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)))
    .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/** A safetensors file from a header object and a data buffer (no checks: for hostile headers). */
function fileOf(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function split(bytes: Uint8Array): { header: Record<string, any>; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.slice(8 + n) };
}

async function main(): Promise<void> {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const dir = await mkdtemp(path.join(os.tmpdir(), "skt-repro18-"));
  let server: ServerProcess | undefined;
  try {
    server = await spawnServerProcess({
      adaptersDir: dir,
      env: { SKT_ADMIN_TOKEN: TOKEN, SKT_MODELS_DIR: MODELS_DIR, SKT_LOG_LEVEL: "info", SKT_THREADS: "1" },
    });
    const { base, port } = server;
    const admin = { authorization: `Bearer ${TOKEN}`, "content-type": "application/octet-stream" };
    const put = (task: string, bytes: Uint8Array) =>
      fetch(`${base}/admin/adapters/${task}`, { method: "PUT", headers: admin, body: Buffer.from(bytes) });
    const scrape = async () => (await fetch(`${base}/metrics`)).text();
    const spamBytes = syntheticAdapterBytes(assets, { task: "spam", labels: ["ham", "spam"], seed: 1 });
    await put("spam", spamBytes);

    // Defect 1: 200 aborted chunked bodies.
    const logBefore = server.output().length;
    let t = performance.now();
    await Promise.all(
      Array.from({ length: 200 }, () =>
        send(
          port,
          [
            "POST /classify?task=spam HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            '8\r\n{"text":\r\n',
          ],
          "destroy",
        ),
      ),
    );
    let m = await scrape();
    while (metric(m, "skt_requests_total", { task: "spam" }) < 200) m = await scrape();
    const log = server.output().slice(logBefore);
    console.log(
      `defect 1: 200 aborted chunked bodies in ${(performance.now() - t).toFixed(0)} ms → statuses 499: ${metric(m, "skt_requests_total", { status: "499" })}, 5xx: ${["500", "503", "504"].reduce((s, st) => s + metric(m, "skt_requests_total", { status: st }), 0)}; ` +
        `log ${log.length} bytes, ${log.split("\n").filter((l) => /"level":"error"|"stack"/.test(l)).length} lines at error or with a stack`,
    );

    // Defect 2: 1e38 in proj.bias.
    const huge = syntheticAdapter(assets, { task: "spam", labels: ["ham", "spam"], seed: 2 });
    const { header, data } = split(encodeAdapter(huge, assets.dims));
    const [b0, b1] = header["proj.bias"].data_offsets as [number, number];
    new Float32Array(data.buffer, data.byteOffset + b0, (b1 - b0) / 4).fill(1e38);
    const r2 = await put("spam", fileOf(header, data));
    console.log(
      `defect 2: proj.bias = 1e38 → ${r2.status} ${((await r2.json()) as { error: { code: string } }).error.code}`,
    );

    // Defect 4: a megabyte prompt_text, with classify latency measured meanwhile.
    for (const [what, prompt] of [
      ["\\ufdfa × 345,000", "\ufdfa".repeat(345_000)],
      ["中 × 340,000", "中".repeat(340_000)],
    ] as const) {
      const parts = split(spamBytes);
      parts.header.__metadata__.prompt_text = prompt;
      let worst = 0;
      let stop = false;
      const probe = (async () => {
        while (!stop) {
          const s = performance.now();
          await fetch(`${base}/classify?task=spam`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: '{"text":"hello"}',
          });
          worst = Math.max(worst, performance.now() - s);
        }
      })();
      t = performance.now();
      const r = await put("spam", fileOf(parts.header, parts.data));
      const ms = performance.now() - t;
      stop = true;
      await probe;
      console.log(
        `defect 4: prompt_text ${what} → ${r.status} ${((await r.json()) as { error: { code: string } }).error.code} in ${ms.toFixed(0)} ms (slowest classify meanwhile ${worst.toFixed(0)} ms)`,
      );
    }

    // Defect 5: labels ["__proto__", "b"].
    await put("proto", syntheticAdapterBytes(assets, { task: "proto", labels: ["__proto__", "b"], seed: 3 }));
    const r5 = (await (
      await fetch(`${base}/classify?task=proto`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"text":"x"}',
      })
    ).json()) as { predictions: { scores: object }[] };
    console.log(`defect 5: labels ["__proto__","b"] → scores ${JSON.stringify(r5.predictions[0].scores)}`);

    // Defect 6: create, classify and delete N tasks.
    const n = Number(args.tasks);
    const before = (await scrape()).length;
    for (let i = 0; i < n; i++) {
      const task = `churn-${i}`;
      await put(task, syntheticAdapterBytes(assets, { task, seed: i }));
      await fetch(`${base}/classify?task=${task}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"text":"x"}',
      });
    }
    const full = (await scrape()).length;
    for (let i = 0; i < n; i++) await fetch(`${base}/admin/adapters/churn-${i}`, { method: "DELETE", headers: admin });
    const after = await scrape();
    console.log(
      `defect 6: /metrics ${before} bytes → ${full} with ${n} more tasks → ${after.length} after deleting them (${after.split("\n").filter((l) => l.includes('task="churn-')).length} series of deleted tasks)`,
    );

    // Defect 8: OPTIONS * and a parser error.
    const options = await send(port, ["OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"], "read");
    const garbage = await send(port, ["GARBAGE\r\n\r\n"], "read");
    console.log(
      `defect 8: OPTIONS * → ${options.split("\r\n")[0]} ${options.slice(options.indexOf("\r\n\r\n") + 4)}; garbage → ${garbage.split("\r\n")[0]} ${garbage.slice(garbage.indexOf("\r\n\r\n") + 4)}`,
    );

    // Defect 9: SIGTERM with one connection holding half-sent headers.
    const held = send(port, ["POST /classify?task=spam HTTP/1.1\r\nHost: x\r\nContent-"], "read", 60_000);
    await new Promise((r) => setTimeout(r, 300));
    t = performance.now();
    server.proc.kill("SIGTERM");
    const exit = await server.exited;
    console.log(
      `defect 9: SIGTERM with half-sent headers → exit ${exit.code} after ${(performance.now() - t).toFixed(0)} ms`,
    );
    await held;
  } finally {
    await server?.kill();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
