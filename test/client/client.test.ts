/**
 * SktClient against a stand-in HTTP server that answers what older or foreign servers do: plain-text
 * 404/405, a non-JSON 200, a JSON error body; and what it sends (method, path, headers, body).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SktClient } from "../../src/client/client.js";
import { serverErrorFrom } from "../helpers/server-error.js";

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

let server: http.Server;
let base: string;
const seen: Seen[] = [];
/** What the stand-in answers next. */
let answer: { status: number; type?: string; body: string } = { status: 200, body: "{}" };

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(answer.status, answer.type ? { "content-type": answer.type } : {});
      res.end(answer.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("SktClient", () => {
  it("sends the documented requests: token only to admin routes, bytes unchanged, JSON bodies", async () => {
    const client = new SktClient({ url: base, token: "tok-123" });
    answer = { status: 201, type: "application/json", body: '{"task":"t","version":3}' };
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) % 256);
    expect(await client.uploadAdapter("t", bytes)).toEqual({ task: "t", version: 3 });
    answer = { status: 200, type: "application/json", body: '{"model":"m","embeddings":[[1,2]],"tokens":[2]}' };
    await client.activate("t", 2);
    await client.embed(["a", "b"]);
    const one = { task: "t", adapter_version: 1, predictions: [] };
    answer = { status: 200, type: "application/json", body: JSON.stringify(one) };
    expect(await client.classify("t", ["x"], ["y"])).toEqual(one);
    answer = { status: 200, type: "application/json", body: JSON.stringify({ results: [one, { ...one, task: "u" }] }) };
    expect((await client.classifyTasks(["t", "u"], ["x"])).results.map((r) => r.task)).toEqual(["t", "u"]);
    answer = { status: 204, body: "" };
    expect(await client.deleteTask("t")).toBeNull();
    const [upload, activate, embed, classify, multi, del] = seen.slice(-6);
    expect(multi).toMatchObject({ method: "POST", url: "/classify?task=t&task=u" });
    expect(upload).toMatchObject({
      method: "PUT",
      url: "/admin/adapters/t",
      headers: { authorization: "Bearer tok-123", "content-type": "application/octet-stream" },
    });
    expect(Buffer.compare(upload.body, Buffer.from(bytes))).toBe(0);
    expect(activate).toMatchObject({
      method: "POST",
      url: "/admin/adapters/t/activate",
      headers: { authorization: "Bearer tok-123", "content-type": "application/json" },
    });
    expect(JSON.parse(activate.body.toString())).toEqual({ version: 2 });
    expect(JSON.parse(embed.body.toString())).toEqual({ texts: ["a", "b"] });
    expect(embed).toMatchObject({ method: "POST", url: "/embed" });
    expect(classify).toMatchObject({ method: "POST", url: "/classify?task=t" });
    expect(JSON.parse(classify.body.toString())).toEqual({ texts: ["x"], text_pairs: ["y"] });
    for (const r of [embed, classify]) expect(r.headers.authorization).toBeUndefined();
    expect(del).toMatchObject({ method: "DELETE", url: "/admin/adapters/t" });
  });

  it("turns each kind of failure into status, code and a message", async () => {
    const client = new SktClient({ url: base, token: "tok-123" });
    answer = {
      status: 409,
      type: "application/json",
      body: '{"error":{"code":"no_earlier_version","message":"nothing to roll back to"}}',
    };
    expect(await serverErrorFrom(client.rollback("t"))).toMatchObject({
      status: 409,
      code: "no_earlier_version",
      message: "nothing to roll back to",
    });
    answer = { status: 405, type: "text/plain", body: "405 Method Not Allowed\nmore" };
    expect(await serverErrorFrom(client.activate("t", 1))).toMatchObject({
      status: 405,
      code: "http_405",
      message:
        "POST /admin/adapters/t/activate answered 405: 405 Method Not Allowed (this server may not offer this endpoint)",
    });
    answer = { status: 404, body: "" };
    expect(await serverErrorFrom(client.embed(["a"]))).toMatchObject({
      status: 404,
      code: "http_404",
      message: "POST /embed answered 404 (this server may not offer this endpoint)",
    });
    answer = { status: 502, type: "text/html", body: "<html>bad gateway</html>" };
    expect(await serverErrorFrom(client.listAdapters())).toMatchObject({
      status: 502,
      code: "http_502",
      message: "GET /admin/adapters?limit=1000 answered 502: <html>bad gateway</html>",
    });
    answer = { status: 200, type: "text/html", body: "<html>a proxy page</html>" };
    expect(await serverErrorFrom(client.listAdapters())).toMatchObject({ status: 200, code: "bad_response" });
    for (const e of seen) expect(e.url).not.toContain("tok-123");
  });

  it("puts the audit filters into the query, encoded, and only those given", async () => {
    const client = new SktClient({ url: base, token: "tok-123" });
    answer = { status: 200, type: "application/json", body: '{"entries":[],"truncated":false}' };
    expect(await client.audit()).toEqual({ entries: [], truncated: false });
    expect(seen.at(-1)).toMatchObject({
      method: "GET",
      url: "/admin/audit",
      headers: { authorization: "Bearer tok-123" },
    });
    await client.audit({ task: "sst2", since: "2026-01-31T12:00:00+01:00", limit: 5 });
    expect(seen.at(-1)!.url).toBe("/admin/audit?task=sst2&since=2026-01-31T12%3A00%3A00%2B01%3A00&limit=5");
  });

  it("encodes task names into the path", async () => {
    answer = { status: 200, type: "application/json", body: "{}" };
    await new SktClient({ url: base, token: "x" }).showAdapter("a/../b c");
    expect(seen.at(-1)!.url).toBe("/admin/adapters/a%2F..%2Fb%20c");
  });
});

describe("SktClient release requests", () => {
  it("puts activate=false / gate=true / tolerance into the upload's query, only when given", async () => {
    const client = new SktClient({ url: base, token: "tok-123" });
    answer = { status: 201, type: "application/json", body: '{"task":"t","version":3,"active":false}' };
    await client.uploadAdapter("t", new Uint8Array([1]));
    await client.uploadAdapter("t", new Uint8Array([1]), { activate: false });
    await client.uploadAdapter("t", new Uint8Array([1]), { gate: true, tolerance: 0.005 });
    expect(seen.slice(-3).map((s) => [s.method, s.url])).toEqual([
      ["PUT", "/admin/adapters/t"],
      ["PUT", "/admin/adapters/t?activate=false"],
      ["PUT", "/admin/adapters/t?gate=true&tolerance=0.005"],
    ]);
  });

  it("sends the eval set with its media type, and reaches the report and version routes", async () => {
    const client = new SktClient({ url: base, token: "tok-123" });
    answer = { status: 200, type: "application/json", body: '{"rows":2}' };
    const tsv = new TextEncoder().encode("sentence\tlabel\na\t0\n");
    await client.putEvalSet("t", tsv, "text/tab-separated-values");
    await client.getEvalSet("t");
    await client.gateReport("t", 4);
    answer = { status: 204, body: "" };
    await client.deleteEvalSet("t");
    await client.deleteVersion("t", 5);
    const [put, get, report, delSet, delVersion] = seen.slice(-5);
    expect(put).toMatchObject({ method: "PUT", url: "/admin/adapters/t/eval-set" });
    expect(put.headers["content-type"]).toBe("text/tab-separated-values");
    expect(put.headers.authorization).toBe("Bearer tok-123");
    expect(new Uint8Array(put.body)).toEqual(tsv);
    expect([get, report, delSet, delVersion].map((s) => [s.method, s.url])).toEqual([
      ["GET", "/admin/adapters/t/eval-set"],
      ["GET", "/admin/adapters/t/versions/4/report"],
      ["DELETE", "/admin/adapters/t/eval-set"],
      ["DELETE", "/admin/adapters/t/versions/5"],
    ]);
  });
});
