/**
 * Safe releases over HTTP against the fake service: inactive uploads (`activate=false`), the
 * evaluation set, the evaluation gate (`gate=true`) with its reports, races with deletes and a second
 * gate, metrics and audit entries. Expected scores are computed here from the rows and the fake's
 * word rules, independently of src/train/metrics.ts.
 */
import { describe, expect, it } from "vitest";
import { encodeFakeAdapter, type FakeAdapterSpec } from "../helpers/fake-service.js";
import { auth, errorOf, makeRig, postJson, sampleValue, scrape, type TestRig } from "./setup.js";

function upload(rig: TestRig, task: string, spec: FakeAdapterSpec, query = "") {
  return rig.app.request(`/admin/adapters/${task}${query}`, {
    method: "PUT",
    headers: { ...auth(), "Content-Type": "application/octet-stream" },
    body: encodeFakeAdapter(spec) as BodyInit,
  });
}

function putEvalSet(rig: TestRig, task: string, body: string, type = "application/jsonl") {
  return rig.app.request(`/admin/adapters/${task}/eval-set`, {
    method: "PUT",
    headers: { ...auth(), "Content-Type": type },
    body,
  });
}

async function details(rig: TestRig, task: string) {
  const res = await rig.app.request(`/admin/adapters/${task}`, { headers: auth() });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    current: number | null;
    versions: {
      version: number;
      state: string;
      staged: boolean;
      gate: { status: string; report_url: string } | null;
    }[];
  };
}

async function classifyVersion(rig: TestRig, task: string): Promise<number> {
  const res = await postJson(rig, `/classify?task=${task}`, { text: "hello" });
  expect(res.status).toBe(200);
  return ((await res.json()) as { adapter_version: number }).adapter_version;
}

interface Report {
  status: string;
  activated: boolean;
  reason: string | null;
  metric: string;
  tolerance: number;
  candidate: { version: number; score: number | null; metrics: Record<string, number> } | null;
  baseline: { version: number; score: number | null } | null;
  progress: { done: number; total: number };
  requested_by: string | null;
}

async function reportOf(rig: TestRig, task: string, version: number): Promise<Report> {
  const res = await rig.app.request(`/admin/adapters/${task}/versions/${version}/report`, { headers: auth() });
  expect(res.status).toBe(200);
  return (await res.json()) as Report;
}

/** Polls the report until the gate has finished (the fake evaluates at once once released). */
async function finalReport(rig: TestRig, task: string, version: number): Promise<Report> {
  for (let i = 0; i < 200; i++) {
    const r = await reportOf(rig, task, version);
    if (!["pending", "running"].includes(r.status)) return r;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`gate of v${version} did not finish`);
}

// 20 rows "alpha aN" labelled positive, 20 rows "beta bN" labelled negative.
const ROWS = [
  ...Array.from({ length: 20 }, (_, i) => ({ text: `alpha a${i}`, label: "positive" })),
  ...Array.from({ length: 20 }, (_, i) => ({ text: `beta b${i}`, label: "negative" })),
];
const EVAL_JSONL = ROWS.map((r) => JSON.stringify(r)).join("\n");

/** The fake predicts by the first rule whose word is in the text (object order), like its `predict`. */
function expectedAccuracy(rules: Record<string, string>): number {
  let correct = 0;
  for (const r of ROWS) {
    const hit = Object.entries(rules).find(([w]) => r.text.split(" ").includes(w));
    if (!hit) throw new Error("every row must be ruled in these tests");
    if (hit[1] === r.label) correct++;
  }
  return correct / ROWS.length;
}

const PERFECT = { alpha: "positive", beta: "negative" };
const HALF = { alpha: "positive", beta: "positive" };
const WRONG = { alpha: "negative", beta: "positive" };
/** 21 of 40 right: row "beta b0" is right too. */
const SLIGHTLY_BETTER_THAN_HALF = { b0: "negative", alpha: "positive", beta: "positive" };
const THREE_QUARTERS = {
  ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`b${i}`, "negative"])),
  alpha: "positive",
  beta: "positive",
};

describe("inactive uploads (activate=false)", () => {
  it("stores and prepares a version without moving the current one, then activates it", async () => {
    const rig = makeRig();
    const res = await upload(rig, "sst2", { labels: ["neg", "pos"] }, "?activate=false");
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({
      task: "sst2",
      version: 2,
      active: false,
      current: 1,
      labels: ["neg", "pos"],
    });
    expect(await classifyVersion(rig, "sst2")).toBe(1);
    const d = await details(rig, "sst2");
    expect(d.current).toBe(1);
    expect(d.versions.map((v) => [v.version, v.state, v.staged, v.gate])).toEqual([
      [1, "current", false, null],
      [2, "inactive", true, null],
    ]);

    const act = await postJson(rig, "/admin/adapters/sst2/activate", { version: 2 }, auth());
    expect(act.status).toBe(200);
    expect(await classifyVersion(rig, "sst2")).toBe(2);
    expect((await details(rig, "sst2")).versions.map((v) => [v.version, v.state, v.staged])).toEqual([
      [1, "inactive", false],
      [2, "current", false],
    ]);
  });

  it("an ordinary upload still answers active: true", async () => {
    const rig = makeRig();
    const res = await upload(rig, "sst2", {});
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ version: 2, active: true, current: 2 });
  });

  it("a new task uploaded inactive exists with no current version and is not served until activated", async () => {
    const rig = makeRig();
    const res = await upload(rig, "fresh", {}, "?activate=false");
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ task: "fresh", version: 1, active: false, current: null });

    const cls = await postJson(rig, "/classify?task=fresh", { text: "hello" });
    expect(cls.status).toBe(404);
    expect((await errorOf(cls)).code).toBe("unknown_task");
    const tasks = (await (await rig.app.request("/tasks")).json()) as { tasks: { task: string }[] };
    expect(tasks.tasks.map((t) => t.task)).not.toContain("fresh");
    const d = await details(rig, "fresh");
    expect(d.current).toBeNull();
    expect(d.versions.map((v) => [v.version, v.state, v.staged])).toEqual([[1, "inactive", true]]);

    // Rollback has no "previous" to go to; activate names the version.
    const rb = await postJson(rig, "/admin/adapters/fresh/rollback", {}, auth());
    expect(rb.status).toBe(404);
    expect((await postJson(rig, "/admin/adapters/fresh/activate", { version: 1 }, auth())).status).toBe(200);
    expect(await classifyVersion(rig, "fresh")).toBe(1);
  });

  it.each([
    ["?gate=true&activate=true", "invalid_query"],
    ["?tolerance=0.01", "invalid_query"],
    ["?activate=maybe", "invalid_request"],
    ["?gate=true&tolerance=2", "invalid_request"],
    ["?gate=true&tolerance=-0.1", "invalid_request"],
  ])("refuses %s with 400 %s and stores nothing", async (query, code) => {
    const rig = makeRig();
    expect((await putEvalSet(rig, "sst2", EVAL_JSONL)).status).toBe(200);
    const res = await upload(rig, "sst2", {}, query);
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe(code);
    expect((await details(rig, "sst2")).versions).toHaveLength(1);
  });

  it("DELETE …/versions/{N} removes an inactive version and refuses the current one", async () => {
    const rig = makeRig();
    await upload(rig, "sst2", {}, "?activate=false");
    const cur = await rig.app.request("/admin/adapters/sst2/versions/1", { method: "DELETE", headers: auth() });
    expect(cur.status).toBe(409);
    expect((await errorOf(cur)).code).toBe("version_is_current");
    const del = await rig.app.request("/admin/adapters/sst2/versions/2", { method: "DELETE", headers: auth() });
    expect(del.status).toBe(204);
    expect((await details(rig, "sst2")).versions.map((v) => v.version)).toEqual([1]);
    const again = await rig.app.request("/admin/adapters/sst2/versions/2", { method: "DELETE", headers: auth() });
    expect(again.status).toBe(404);
  });
});

describe("PUT/GET/DELETE /admin/adapters/{task}/eval-set", () => {
  it("stores a JSONL set checked against the adapter's labels, and describes it", async () => {
    const rig = makeRig();
    const res = await putEvalSet(rig, "sst2", EVAL_JSONL);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ format: "jsonl", rows: 40, labels: ["negative", "positive"], label_mapping: "names" });
    expect(body).not.toHaveProperty("examples");
    const got = await rig.app.request("/admin/adapters/sst2/eval-set", { headers: auth() });
    expect(await got.json()).toEqual(body);
  });

  it("reads GLUE TSV with 0/1 labels as indices into the adapter's labels", async () => {
    const rig = makeRig();
    const tsv = "sentence\tlabel\nawful film\t0\ngreat film\t1\n";
    const res = await putEvalSet(rig, "sst2", tsv, "text/tab-separated-values");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ format: "tsv", rows: 2, label_mapping: "position" });
    const stored = JSON.parse(new TextDecoder().decode((await rig.service.readDocument("sst2", "eval-set.json"))!));
    expect(stored.examples).toEqual([
      { text: "awful film", label: "negative" },
      { text: "great film", label: "positive" },
    ]);
  });

  it.each([
    [
      "a label that is not the adapter's",
      '{"text":"a","label":"positive"}\n{"text":"b","label":"meh"}',
      "application/jsonl",
      400,
      "eval_set_unknown_label",
    ],
    [
      "an index past the labels",
      "sentence\tlabel\na\t0\nb\t2\n",
      "text/tab-separated-values",
      400,
      "eval_set_unknown_label",
    ],
    ["a row without a label (trainer's reader)", '{"text":"a"}', "application/jsonl", 400, "dataset_missing_label"],
    [
      "text pairs for a single-text task",
      "text,text_pair,label\na,b,positive\n",
      "text/csv",
      400,
      "eval_set_pair_mismatch",
    ],
    ["a wrong content type", EVAL_JSONL, "application/json", 415, "unsupported_media_type"],
  ])("refuses %s and keeps the stored set", async (_name, body, type, status, code) => {
    const rig = makeRig();
    expect((await putEvalSet(rig, "sst2", EVAL_JSONL)).status).toBe(200);
    const res = await putEvalSet(rig, "sst2", body, type);
    expect(res.status).toBe(status);
    expect((await errorOf(res)).code).toBe(code);
    const got = (await (await rig.app.request("/admin/adapters/sst2/eval-set", { headers: auth() })).json()) as {
      rows: number;
    };
    expect(got.rows).toBe(40);
  });

  it("limits rows (SKT_MAX_EVAL_SET_ROWS) and bytes (SKT_MAX_EVAL_SET_BYTES) with 413", async () => {
    const rows = makeRig({ maxEvalSetRows: 39 });
    const r = await putEvalSet(rows, "sst2", EVAL_JSONL);
    expect(r.status).toBe(413);
    expect((await errorOf(r)).code).toBe("eval_set_too_large");
    const bytes = makeRig({ maxEvalSetBytes: 100 });
    const b = await putEvalSet(bytes, "sst2", EVAL_JSONL);
    expect(b.status).toBe(413);
    expect((await errorOf(b)).code).toBe("eval_set_too_large");
    expect(await bytes.service.readDocument("sst2", "eval-set.json")).toBeNull();
  });

  it("answers 404 for an unknown task and for a task without a set; DELETE removes it", async () => {
    const rig = makeRig();
    expect((await putEvalSet(rig, "ghost", EVAL_JSONL)).status).toBe(404);
    const none = await rig.app.request("/admin/adapters/sst2/eval-set", { headers: auth() });
    expect(none.status).toBe(404);
    expect((await errorOf(none)).code).toBe("eval_set_not_found");
    await putEvalSet(rig, "sst2", EVAL_JSONL);
    expect((await rig.app.request("/admin/adapters/sst2/eval-set", { method: "DELETE", headers: auth() })).status).toBe(
      204,
    );
    expect((await rig.app.request("/admin/adapters/sst2/eval-set", { headers: auth() })).status).toBe(404);
    expect((await rig.app.request("/admin/adapters/sst2/eval-set", { method: "DELETE", headers: auth() })).status).toBe(
      404,
    );
  });
});

describe("the evaluation gate (gate=true)", () => {
  /** sst2 with v2 = HALF current (accuracy 0.5) and the eval set stored. */
  async function gatedRig(): Promise<TestRig> {
    const rig = makeRig();
    expect((await upload(rig, "sst2", { rules: HALF })).status).toBe(201);
    expect((await putEvalSet(rig, "sst2", EVAL_JSONL)).status).toBe(200);
    return rig;
  }

  it("refuses with 409 no_eval_set when the task has no set, and stores nothing", async () => {
    const rig = makeRig();
    const res = await upload(rig, "sst2", { rules: PERFECT }, "?gate=true");
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe("no_eval_set");
    expect((await details(rig, "sst2")).versions).toHaveLength(1);
  });

  it("activates a version that scores at least the current one, with a report", async () => {
    const rig = await gatedRig();
    const res = await upload(rig, "sst2", { rules: PERFECT }, "?gate=true");
    expect(res.status).toBe(202);
    const body = await res.json();
    expect(body).toMatchObject({
      version: 3,
      active: false,
      current: 2,
      gate: { report_url: "/admin/adapters/sst2/versions/3/report" },
    });
    expect(res.headers.get("location")).toBe("/admin/adapters/sst2/versions/3/report");

    const r = await finalReport(rig, "sst2", 3);
    expect(r).toMatchObject({ status: "passed", activated: true, metric: "accuracy", tolerance: 0 });
    expect(r.candidate!.score).toBe(expectedAccuracy(PERFECT));
    expect(r.baseline).toMatchObject({ version: 2, score: expectedAccuracy(HALF) });
    expect(r.progress).toEqual({ done: 40, total: 40 });
    expect(r.requested_by).toBe("admin");
    expect(await classifyVersion(rig, "sst2")).toBe(3);
    const v3 = (await details(rig, "sst2")).versions.find((v) => v.version === 3)!;
    expect(v3).toMatchObject({ state: "current", gate: { status: "passed" } });
    // Evaluated through the service's evaluate (candidate, then the current version as baseline).
    expect(rig.service.evaluateCalls.map((c) => [c.version, c.texts.length])).toEqual([
      [3, 40],
      [2, 40],
    ]);
  });

  it("keeps a worse version inactive with its report", async () => {
    const rig = await gatedRig();
    expect((await upload(rig, "sst2", { rules: WRONG }, "?gate=true")).status).toBe(202);
    const r = await finalReport(rig, "sst2", 3);
    expect(r).toMatchObject({ status: "failed", activated: false });
    expect(r.candidate!.score).toBe(0);
    expect(r.reason).toMatch(/below v2/);
    expect(await classifyVersion(rig, "sst2")).toBe(2);
    const v3 = (await details(rig, "sst2")).versions.find((v) => v.version === 3)!;
    expect(v3).toMatchObject({ state: "inactive", staged: true, gate: { status: "failed" } });
  });

  it("lets a slightly worse version through within the tolerance, not outside it", async () => {
    const rig = makeRig();
    await upload(rig, "sst2", { rules: SLIGHTLY_BETTER_THAN_HALF });
    await putEvalSet(rig, "sst2", EVAL_JSONL);
    // 0.5 vs 0.525: fails at 0.01, passes at 0.05.
    expect(expectedAccuracy(SLIGHTLY_BETTER_THAN_HALF) - expectedAccuracy(HALF)).toBeCloseTo(0.025, 10);
    await upload(rig, "sst2", { rules: HALF }, "?gate=true&tolerance=0.01");
    expect((await finalReport(rig, "sst2", 3)).status).toBe("failed");
    await upload(rig, "sst2", { rules: HALF }, "?gate=true&tolerance=0.05");
    const r = await finalReport(rig, "sst2", 4);
    expect(r).toMatchObject({ status: "passed", tolerance: 0.05 });
    expect(await classifyVersion(rig, "sst2")).toBe(4);
  });

  it("passes on its own score when the task has no current version", async () => {
    const rig = makeRig();
    expect((await upload(rig, "fresh", {}, "?activate=false")).status).toBe(201);
    expect((await putEvalSet(rig, "fresh", EVAL_JSONL)).status).toBe(200);
    expect((await upload(rig, "fresh", { rules: WRONG }, "?gate=true")).status).toBe(202);
    const r = await finalReport(rig, "fresh", 2);
    expect(r).toMatchObject({ status: "passed", activated: true, baseline: null });
    expect(r.reason).toMatch(/no current version/);
    expect(await classifyVersion(rig, "fresh")).toBe(2);
  });

  it("counts outcomes in skt_gate_outcomes_total and writes audit entries", async () => {
    const rig = await gatedRig();
    await upload(rig, "sst2", { rules: PERFECT }, "?gate=true");
    await finalReport(rig, "sst2", 3);
    await upload(rig, "sst2", { rules: WRONG }, "?gate=true");
    await finalReport(rig, "sst2", 4);
    const samples = await scrape(rig);
    expect(sampleValue(samples, "skt_gate_outcomes_total", { outcome: "passed" })).toBe(1);
    expect(sampleValue(samples, "skt_gate_outcomes_total", { outcome: "failed" })).toBe(1);
    expect(sampleValue(samples, "skt_gate_outcomes_total", { outcome: "cancelled" })).toBe(0);
    const audit = (await (await rig.app.request("/admin/audit?task=sst2", { headers: auth() })).json()) as {
      entries: { action: string; version: number | null; actor: string | null; result: string }[];
    };
    const gates = audit.entries.filter((e) => e.action.startsWith("gate_"));
    expect(gates.map((e) => [e.action, e.version, e.actor, e.result])).toEqual([
      ["gate_passed", 3, "admin", "ok"],
      ["gate_failed", 4, "admin", "failed"],
    ]);
  });

  it("answers 404 report_not_found for a version without a gate", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/admin/adapters/sst2/versions/1/report", { headers: auth() });
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("report_not_found");
  });
});

describe("gate races", () => {
  function hold(rig: TestRig): () => void {
    let release!: () => void;
    rig.service.evaluateGate = new Promise<void>((resolve) => (release = resolve));
    return () => {
      rig.service.evaluateGate = null;
      release();
    };
  }

  async function setUp(): Promise<TestRig> {
    const rig = makeRig();
    await upload(rig, "sst2", { rules: HALF });
    await putEvalSet(rig, "sst2", EVAL_JSONL);
    return rig;
  }

  it("a version deleted while its gate runs: report cancelled, nothing activated", async () => {
    const rig = await setUp();
    const release = hold(rig);
    expect((await upload(rig, "sst2", { rules: PERFECT }, "?gate=true")).status).toBe(202);
    const del = await rig.app.request("/admin/adapters/sst2/versions/3", { method: "DELETE", headers: auth() });
    expect(del.status).toBe(204);
    release();
    const r = await finalReport(rig, "sst2", 3);
    expect(r).toMatchObject({ status: "cancelled", activated: false });
    expect(r.reason).toMatch(/v3 was deleted/);
    expect(await classifyVersion(rig, "sst2")).toBe(2);
    expect((await details(rig, "sst2")).versions.map((v) => v.version)).toEqual([1, 2]);
    expect(sampleValue(await scrape(rig), "skt_gate_outcomes_total", { outcome: "cancelled" })).toBe(1);
  });

  it("the task deleted while a gate runs: cancelled, and nothing is written back for the task", async () => {
    const rig = await setUp();
    const release = hold(rig);
    expect((await upload(rig, "sst2", { rules: PERFECT }, "?gate=true")).status).toBe(202);
    expect((await rig.app.request("/admin/adapters/sst2", { method: "DELETE", headers: auth() })).status).toBe(204);
    release();
    const r = await finalReport(rig, "sst2", 3);
    expect(r.status).toBe("cancelled");
    expect(await rig.service.readDocument("sst2", "gate-v000003.json")).toBeNull();
    expect((await rig.app.request("/admin/adapters/sst2", { headers: auth() })).status).toBe(404);
  });

  it("two gated uploads at once: each evaluated, decisions serialized against the then-current version", async () => {
    const rig = await setUp();
    const release = hold(rig);
    const [a, b] = await Promise.all([
      upload(rig, "sst2", { rules: PERFECT }, "?gate=true"),
      upload(rig, "sst2", { rules: THREE_QUARTERS }, "?gate=true"),
    ]);
    expect([a.status, b.status]).toEqual([202, 202]);
    const versions = [
      ((await a.json()) as { version: number }).version,
      ((await b.json()) as { version: number }).version,
    ];
    expect(versions.sort()).toEqual([3, 4]);
    release();
    const r3 = await finalReport(rig, "sst2", 3);
    const r4 = await finalReport(rig, "sst2", 4);
    // Whichever version holds PERFECT (1.0) passes against v2 (0.5); THREE_QUARTERS (0.75) is then
    // compared with the version current at its decision, never with a stale one.
    const perfect = [r3, r4].find((r) => r.candidate!.score === expectedAccuracy(PERFECT))!;
    const other = [r3, r4].find((r) => r !== perfect)!;
    expect(other.candidate!.score).toBe(expectedAccuracy(THREE_QUARTERS));
    expect(perfect.status).toBe("passed");
    const current = (await details(rig, "sst2")).current;
    expect(current).toBe(perfect.candidate!.version);
    if (other.status === "passed") {
      // It decided first (against v2) and was then replaced by the perfect one.
      expect(other.baseline!.version).toBe(2);
      expect(perfect.baseline!.version).toBe(other.candidate!.version);
    } else {
      expect(other.status).toBe("failed");
      expect(other.baseline).toMatchObject({ version: perfect.candidate!.version, score: 1 });
    }
    expect(await classifyVersion(rig, "sst2")).toBe(current);
  });
});
