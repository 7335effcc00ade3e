/**
 * `POST /classify?task=a&task=b` against the fake service: the multi-task shape in the order asked,
 * the single-task shape unchanged, 404 before anything runs, the task limit and duplicates (422),
 * per-task metrics, and a deadline or a failing task cancelling every task's work.
 */
import { describe, expect, it } from "vitest";
import { errorOf, makeRig, postJson, sampleValue, scrape } from "./setup.js";

interface ResultJson {
  task: string;
  adapter_version: number;
  predictions: { label?: string; score?: number; value?: number; tokens: number; truncated: boolean }[];
}

describe("POST /classify with several tasks", () => {
  it("answers one entry per task in the order asked, each equal to that task's single-task answer", async () => {
    const rig = makeRig(
      {},
      { tasks: { sst2: {}, spam: { labels: ["ham", "spam", "phish"] }, stsb: { problemType: "regression" } } },
    );
    const body = { texts: ["a fine film", "buy now", "dull and long"] };
    const res = await postJson(rig, "/classify?task=spam&task=sst2&task=stsb", body);
    expect(res.status).toBe(200);
    const multi = (await res.json()) as { results: ResultJson[] };
    expect(multi.results.map((r) => r.task)).toEqual(["spam", "sst2", "stsb"]);
    for (const r of multi.results) {
      const single = await postJson(rig, `/classify?task=${r.task}`, body);
      expect(single.status).toBe(200);
      expect(await single.json()).toEqual(r); // single-task shape: exactly one entry of `results`
    }
    // Every task got the same texts, the same deadline and one shared (group) signal.
    const calls = rig.service.classifyCalls.slice(0, 3);
    expect(calls.map((c) => c.task)).toEqual(["spam", "sst2", "stsb"]);
    expect(new Set(calls.map((c) => c.deadline)).size).toBe(1);
    expect(calls.every((c) => c.texts === calls[0].texts && c.signal === calls[0].signal)).toBe(true);
  });

  it("one task keeps today's shape (no `results`)", async () => {
    const rig = makeRig();
    const res = await postJson(rig, "/classify?task=sst2", { text: "fine" });
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(["task", "adapter_version", "predictions"]);
  });

  it("an unknown task fails the whole call with 404 naming it, before any task's work is queued", async () => {
    const rig = makeRig();
    const res = await postJson(rig, "/classify?task=sst2&task=nope&task=gone", { text: "fine" });
    expect(res.status).toBe(404);
    const err = await errorOf(res);
    expect(err.code).toBe("unknown_task");
    expect(err.message).toContain('"nope"');
    expect(rig.service.classifyCalls).toHaveLength(0);
  });

  it("refuses more tasks than SKT_MAX_TASKS_PER_CALL, and a task named twice, with 422 (nothing runs)", async () => {
    const rig = makeRig({ maxTasksPerCall: 2 }, { tasks: { a: {}, b: {}, c: {} } });
    let res = await postJson(rig, "/classify?task=a&task=b&task=c", { text: "x" });
    expect(res.status).toBe(422);
    let err = await errorOf(res);
    expect(err.code).toBe("too_many_tasks");
    expect(err.message).toContain("SKT_MAX_TASKS_PER_CALL");
    expect(err.message).toContain("at most 2");
    res = await postJson(rig, "/classify?task=a&task=a", { text: "x" });
    expect(res.status).toBe(422);
    err = await errorOf(res);
    expect(err.code).toBe("duplicate_task");
    expect(err.message).toContain('"a"');
    expect(rig.service.classifyCalls).toHaveLength(0);
    expect((await postJson(rig, "/classify?task=a&task=b", { text: "x" })).status).toBe(200);
  });

  it("an invalid name among several is 400 invalid_task_name", async () => {
    const rig = makeRig();
    const res = await postJson(rig, "/classify?task=sst2&task=Bad%20Name", { text: "x" });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("invalid_task_name");
  });

  it("a task-specific failure (pair misuse) fails the call and cancels the other tasks' work", async () => {
    const rig = makeRig();
    const res = await postJson(rig, "/classify?task=sst2&task=mnli", { text: "x" });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("missing_pair");
    expect(rig.service.classifyCalls.map((c) => c.task)).toEqual(["sst2", "mnli"]);
    expect(rig.service.classifyCalls[0].signal!.aborted).toBe(true);
  });

  it("counts the call under each task's label", async () => {
    const rig = makeRig({}, { tasks: { sst2: {}, spam: {} } });
    await postJson(rig, "/classify?task=sst2&task=spam", { text: "x" });
    await postJson(rig, "/classify?task=sst2", { text: "x" });
    const samples = await scrape(rig);
    expect(sampleValue(samples, "skt_requests_total", { task: "sst2", status: "200" })).toBe(2);
    expect(sampleValue(samples, "skt_requests_total", { task: "spam", status: "200" })).toBe(1);
    expect(sampleValue(samples, "skt_request_duration_seconds_count", { task: "spam" })).toBe(1);
  });

  it("the deadline aborts every task's engine call and answers 504", async () => {
    const rig = makeRig({ requestTimeoutMs: 5 });
    rig.service.hang = true;
    const res = await postJson(rig, "/classify?task=sst2&task=stsb", { text: "a" });
    expect(res.status).toBe(504);
    expect(rig.service.classifyCalls).toHaveLength(2);
    for (const call of rig.service.classifyCalls) expect(call.signal!.aborted).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(rig.logs.filter((l) => l.msg === "unhandled error")).toEqual([]);
  });

  it("a client that goes away cancels every task (499)", async () => {
    const rig = makeRig();
    rig.service.hang = true;
    const client = new AbortController();
    let startedCount = 0;
    const started = new Promise<void>((resolve) => {
      rig.service.onClassifyStart = () => {
        if (++startedCount === 2) resolve();
      };
    });
    const pending = rig.app.request(
      new Request("http://localhost/classify?task=sst2&task=stsb", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: "a" }),
        signal: client.signal,
      }),
    );
    await started;
    client.abort();
    const res = await pending;
    expect(res.status).toBe(499);
    expect((await errorOf(res)).code).toBe("client_closed");
    for (const call of rig.service.classifyCalls) expect(call.signal!.aborted).toBe(true);
  });

  it("the OpenAPI document states both answer shapes as oneOf and the task parameter as repeatable", async () => {
    const rig = makeRig();
    const doc = (await (await rig.app.request("/openapi.json")).json()) as {
      paths: Record<
        string,
        Record<
          string,
          {
            parameters: { name: string; schema: { type: string }; explode?: boolean }[];
            responses: Record<string, { content: Record<string, { schema: { $ref: string } }> }>;
          }
        >
      >;
      components: { schemas: Record<string, { oneOf?: { $ref: string }[] }> };
    };
    const op = doc.paths["/classify"].post;
    expect(op.parameters.find((p) => p.name === "task")).toMatchObject({ schema: { type: "array" }, explode: true });
    const ref = op.responses["200"].content["application/json"].schema.$ref.split("/").at(-1)!;
    expect(doc.components.schemas[ref].oneOf!.map((s) => s.$ref)).toEqual([
      "#/components/schemas/ClassifyResponse",
      "#/components/schemas/MultiClassifyResponse",
    ]);
  });
});
