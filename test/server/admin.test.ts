import { describe, expect, it } from "vitest";
import { encodeFakeAdapter } from "../helpers/fake-service.js";
import { ADMIN_TOKEN, auth, errorOf, makeRig, postJson, sampleValue, scrape, type TestRig } from "./setup.js";

type Body = Uint8Array | ReadableStream<Uint8Array> | string | null;

function put(rig: TestRig, task: string, body: Body, headers: Record<string, string> = {}) {
  return rig.app.request(`/admin/adapters/${task}`, {
    method: "PUT",
    headers: { ...auth(), "Content-Type": "application/octet-stream", ...headers },
    body: body as BodyInit | null,
    // Node's fetch needs this for streamed request bodies.
    ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
  });
}

const ADMIN_ROUTES: Array<[string, string]> = [
  ["GET", "/admin/adapters"],
  ["GET", "/admin/adapters/sst2"],
  ["PUT", "/admin/adapters/sst2"],
  ["POST", "/admin/adapters/sst2/rollback"],
  ["POST", "/admin/adapters/sst2/activate"],
  ["DELETE", "/admin/adapters/sst2"],
  ["PUT", "/admin/adapters/sst2/eval-set"],
  ["GET", "/admin/adapters/sst2/eval-set"],
  ["DELETE", "/admin/adapters/sst2/eval-set"],
  ["GET", "/admin/adapters/sst2/versions/1/report"],
  ["DELETE", "/admin/adapters/sst2/versions/1"],
];

describe("admin auth", () => {
  it.each(ADMIN_ROUTES)("%s %s answers 403 admin_disabled when no token is configured", async (method, path) => {
    const rig = makeRig({ adminToken: undefined });
    const res = await rig.app.request(path, { method, headers: auth() });
    expect(res.status).toBe(403);
    const err = await errorOf(res);
    expect(err.code).toBe("admin_disabled");
    expect(err.message).toMatch(/SKT_ADMIN_TOKEN/);
  });

  it.each(ADMIN_ROUTES)("%s %s answers 401 without a token", async (method, path) => {
    const rig = makeRig();
    const res = await rig.app.request(path, { method });
    expect(res.status).toBe(401);
    expect((await errorOf(res)).code).toBe("unauthorized");
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
  });

  it.each(ADMIN_ROUTES)("%s %s answers 401 with a wrong token", async (method, path) => {
    const rig = makeRig();
    const res = await rig.app.request(path, { method, headers: auth("not-the-token") });
    expect(res.status).toBe(401);
    expect((await errorOf(res)).code).toBe("invalid_token");
  });

  it("answers 400 for an Authorization header that is not a bearer token", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/admin/adapters", { headers: { Authorization: "Basic dXNlcjpwYXNz" } });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("invalid_authorization_header");
  });

  it("lets the right token through", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/admin/adapters", { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
  });

  it("checks auth before reading or limiting the body", async () => {
    const rig = makeRig({ maxUploadBytes: 4 });
    const res = await rig.app.request("/admin/adapters/sst2", {
      method: "PUT",
      headers: { "Content-Type": "text/plain" },
      body: "far too large and the wrong type",
    });
    expect(res.status).toBe(401);
    const samples = await scrape(rig);
    expect(sampleValue(samples, "skt_uploads_total", { outcome: "invalid" })).toBe(0);
  });
});

describe("GET /admin/adapters", () => {
  it("lists every task with its current version", async () => {
    const rig = makeRig();
    await put(rig, "sst2", encodeFakeAdapter({}));
    const res = await rig.app.request("/admin/adapters", { headers: auth() });
    expect(await res.json()).toEqual({
      adapters: [
        { task: "mnli", version: 1 },
        { task: "sst2", version: 2 },
        { task: "stsb", version: 1 },
      ],
      total: 3,
      next_cursor: null,
    });
  });

  it("pages with limit and cursor, like GET /tasks", async () => {
    const rig = makeRig();
    const first = (await (await rig.app.request("/admin/adapters?limit=2", { headers: auth() })).json()) as {
      adapters: { task: string }[];
      total: number;
      next_cursor: string;
    };
    expect(first.adapters.map((a) => a.task)).toEqual(["mnli", "sst2"]);
    expect(first.total).toBe(3);
    const second = (await (
      await rig.app.request(`/admin/adapters?limit=2&cursor=${first.next_cursor}`, { headers: auth() })
    ).json()) as { adapters: { task: string }[]; next_cursor: string | null };
    expect(second.adapters.map((a) => a.task)).toEqual(["stsb"]);
    expect(second.next_cursor).toBeNull();
    const bad = await rig.app.request("/admin/adapters?cursor=nonsense", { headers: auth() });
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).code).toBe("invalid_cursor");
  });
});

describe("GET /admin/adapters/{task}", () => {
  it("shows versions and metadata with snake_case keys", async () => {
    const rig = makeRig();
    await put(rig, "sst2", encodeFakeAdapter({ labels: ["neg", "pos"] }));
    const res = await rig.app.request("/admin/adapters/sst2", { headers: auth() });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      task: string;
      current: number;
      versions: Array<{
        version: number;
        current: boolean;
        bytes: number;
        created_at: string;
        metadata: Record<string, unknown>;
      }>;
    };
    expect(body.task).toBe("sst2");
    expect(body.current).toBe(2);
    expect(body.versions.map((v) => [v.version, v.current])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(typeof body.versions[1].created_at).toBe("string");
    expect(body.versions[1].metadata).toMatchObject({
      labels: ["neg", "pos"],
      problem_type: "single_label_classification",
      prompt_text: expect.any(String),
      text_pair: false,
    });
    expect(body.versions[1].metadata).not.toHaveProperty("problemType");
  });

  it("answers 404 for an unknown task", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/admin/adapters/ghost", { headers: auth() });
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("unknown_task");
  });
});

describe("task name validation", () => {
  const bad = ["UPPER", "-leading-dash", "a".repeat(65), "dots.in.name", "..%2F..", "sp%20ace", "%C3%A9t%C3%A9"];
  it.each(bad)("rejects %s with 400 invalid_task_name before calling the service", async (name) => {
    const rig = makeRig();
    for (const [method, path] of [
      ["GET", `/admin/adapters/${name}`],
      ["DELETE", `/admin/adapters/${name}`],
      ["POST", `/admin/adapters/${name}/rollback`],
    ] as const) {
      const res = await rig.app.request(path, { method, headers: auth() });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect((await errorOf(res)).code).toBe("invalid_task_name");
    }
    const res = await put(rig, name, encodeFakeAdapter({}));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("invalid_task_name");
    expect((await rig.service.listTasks({ limit: 100 })).tasks.map((t) => t.task)).toEqual(["mnli", "sst2", "stsb"]);
  });
});

describe("PUT /admin/adapters/{task}", () => {
  it("uploads a new version that /classify then answers from", async () => {
    const rig = makeRig();
    const before = (await (await postJson(rig, "/classify?task=sst2", { text: "hello" })).json()) as {
      adapter_version: number;
      predictions: Array<{ label: string }>;
    };
    expect(before.adapter_version).toBe(1);

    const res = await put(rig, "sst2", encodeFakeAdapter({ labels: ["bad", "meh", "good"] }));
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({
      task: "sst2",
      version: 2,
      labels: ["bad", "meh", "good"],
      problem_type: "single_label_classification",
    });

    const after = (await (await postJson(rig, "/classify?task=sst2", { text: "hello" })).json()) as {
      adapter_version: number;
      predictions: Array<{ label: string; scores: Record<string, number> }>;
    };
    expect(after.adapter_version).toBe(2);
    expect(Object.keys(after.predictions[0].scores).sort()).toEqual(["bad", "good", "meh"]);
  });

  it("creates a new task", async () => {
    const rig = makeRig();
    expect((await postJson(rig, "/classify?task=cola", { text: "x" })).status).toBe(404);
    expect((await put(rig, "cola", encodeFakeAdapter({ labels: ["unacceptable", "acceptable"] }))).status).toBe(201);
    expect((await postJson(rig, "/classify?task=cola", { text: "x" })).status).toBe(200);
    const samples = await scrape(rig);
    expect(sampleValue(samples, "skt_requests_total", { task: "cola", status: "200" })).toBe(1);
    expect(sampleValue(samples, "skt_requests_total", { task: "__unknown__", status: "404" })).toBe(1);
  });

  it.each([["text/plain"], ["application/json"], ["multipart/form-data; boundary=x"]])(
    "rejects Content-Type %s with 415",
    async (type) => {
      const rig = makeRig();
      const res = await put(rig, "sst2", encodeFakeAdapter({}), { "Content-Type": type });
      expect(res.status).toBe(415);
      expect((await errorOf(res)).code).toBe("unsupported_media_type");
    },
  );

  it("rejects a missing Content-Type with 415", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/admin/adapters/sst2", {
      method: "PUT",
      headers: auth(),
      body: new Blob([encodeFakeAdapter({}) as Uint8Array<ArrayBuffer>]),
    });
    expect(res.status).toBe(415);
  });

  it("rejects an upload over the limit (Content-Length) with 413", async () => {
    const rig = makeRig({ maxUploadBytes: 64 });
    const res = await put(rig, "sst2", new Uint8Array(65), { "Content-Length": "65" });
    expect(res.status).toBe(413);
    expect(await errorOf(res)).toMatchObject({ code: "upload_too_large", message: expect.stringMatching(/64 bytes/) });
    expect((await rig.service.adapterDetails("sst2")).versions).toHaveLength(1);
  });

  it("enforces the limit while streaming when there is no Content-Length", async () => {
    const rig = makeRig({ maxUploadBytes: 64 });
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 1000)
          controller.close(); // would be 32 KB; the limit should stop us long before
        else controller.enqueue(new Uint8Array(32));
      },
    });
    const res = await put(rig, "sst2", stream);
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe("upload_too_large");
    expect(pulled).toBeLessThan(1000);
  });

  it("accepts an upload at exactly the limit", async () => {
    const spec = encodeFakeAdapter({ labels: ["a", "b"] });
    const rig = makeRig({ maxUploadBytes: spec.byteLength });
    expect((await put(rig, "sst2", spec)).status).toBe(201);
  });

  it("uses a 16 MiB limit by default", async () => {
    const rig = makeRig();
    expect(rig.config.maxUploadBytes).toBe(16 * 1024 * 1024);
    const res = await put(rig, "sst2", new Uint8Array(16 * 1024 * 1024 + 1));
    expect(res.status).toBe(413);
  });

  it("rejects an empty body with 400", async () => {
    const rig = makeRig();
    const res = await put(rig, "sst2", new Uint8Array(0));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("empty_body");
  });

  it("maps an invalid adapter to 422 and keeps the current version", async () => {
    const rig = makeRig();
    const res = await put(rig, "sst2", new TextEncoder().encode("not safetensors"));
    expect(res.status).toBe(422);
    expect((await errorOf(res)).code).toBe("header_not_json");
    expect((await rig.service.adapterDetails("sst2")).current).toBe(1);
  });

  it("maps a storage failure to 507", async () => {
    const rig = makeRig();
    rig.service.failNextWith("upload", "storage", "disk_full");
    const res = await put(rig, "sst2", encodeFakeAdapter({}));
    expect(res.status).toBe(507);
    expect((await errorOf(res)).code).toBe("disk_full");
  });

  it("counts uploads by outcome", async () => {
    const rig = makeRig({ maxUploadBytes: 1024 });
    await put(rig, "sst2", encodeFakeAdapter({})); // ok
    await put(rig, "sst2", encodeFakeAdapter({})); // ok
    await put(rig, "sst2", new TextEncoder().encode("junk")); // invalid (422)
    await put(rig, "sst2", new Uint8Array(2048)); // invalid (413)
    await put(rig, "sst2", encodeFakeAdapter({}), { "Content-Type": "text/plain" }); // invalid (415)
    rig.service.failNext("upload", new Error("boom"));
    await put(rig, "sst2", encodeFakeAdapter({})); // error (500)
    const samples = await scrape(rig);
    expect(sampleValue(samples, "skt_uploads_total", { outcome: "ok" })).toBe(2);
    expect(sampleValue(samples, "skt_uploads_total", { outcome: "invalid" })).toBe(3);
    expect(sampleValue(samples, "skt_uploads_total", { outcome: "error" })).toBe(1);
  });
});

describe("POST /admin/adapters/{task}/rollback", () => {
  it("rolls back to the previous version by default, and to a chosen one", async () => {
    const rig = makeRig();
    await put(rig, "sst2", encodeFakeAdapter({ labels: ["x", "y"] })); // v2
    await put(rig, "sst2", encodeFakeAdapter({ labels: ["p", "q"] })); // v3

    let res = await rig.app.request("/admin/adapters/sst2/rollback", { method: "POST", headers: auth() });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ task: "sst2", version: 2, labels: ["x", "y"] });
    let cls = (await (await postJson(rig, "/classify?task=sst2", { text: "a" })).json()) as { adapter_version: number };
    expect(cls.adapter_version).toBe(2);

    res = await postJson(rig, "/admin/adapters/sst2/rollback", { version: 3 }, auth());
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ version: 3 });
    cls = (await (await postJson(rig, "/classify?task=sst2", { text: "a" })).json()) as { adapter_version: number };
    expect(cls.adapter_version).toBe(3);

    res = await postJson(rig, "/admin/adapters/sst2/rollback", {}, auth());
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ version: 2 });
  });

  it("answers 409 when there is no earlier version", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/admin/adapters/sst2/rollback", { method: "POST", headers: auth() });
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe("no_previous_version");
  });

  it("answers 404 for an unknown version or task", async () => {
    const rig = makeRig();
    let res = await postJson(rig, "/admin/adapters/sst2/rollback", { version: 9 }, auth());
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("unknown_version");
    res = await rig.app.request("/admin/adapters/ghost/rollback", { method: "POST", headers: auth() });
    expect(res.status).toBe(404);
  });

  it("validates the body", async () => {
    const rig = makeRig();
    let res = await postJson(rig, "/admin/adapters/sst2/rollback", { version: "two" }, auth());
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: "invalid_request", message: expect.stringMatching(/^version: /) });
    res = await postJson(rig, "/admin/adapters/sst2/rollback", "{nope", auth());
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("malformed_json");
  });
});

describe("POST /admin/adapters/{task}/activate", () => {
  const currentVersion = async (rig: TestRig) =>
    ((await (await postJson(rig, "/classify?task=sst2", { text: "a" })).json()) as { adapter_version: number })
      .adapter_version;

  it("makes an earlier, then a later, stored version current and serves it", async () => {
    const rig = makeRig();
    await put(rig, "sst2", encodeFakeAdapter({ labels: ["x", "y"] })); // v2
    await put(rig, "sst2", encodeFakeAdapter({ labels: ["p", "q"] })); // v3
    expect(await currentVersion(rig)).toBe(3);

    let res = await postJson(rig, "/admin/adapters/sst2/activate", { version: 1 }, auth());
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ task: "sst2", version: 1, labels: ["negative", "positive"] });
    expect(await currentVersion(rig)).toBe(1);

    res = await postJson(rig, "/admin/adapters/sst2/activate", { version: 2 }, auth()); // forward
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ task: "sst2", version: 2, labels: ["x", "y"] });
    expect(await currentVersion(rig)).toBe(2);
    const details = (await (await rig.app.request("/admin/adapters/sst2", { headers: auth() })).json()) as {
      current: number;
    };
    expect(details.current).toBe(2);
  });

  it("answers 409 version_is_current for the current version, changing nothing", async () => {
    const rig = makeRig();
    await put(rig, "sst2", encodeFakeAdapter({})); // v2
    const res = await postJson(rig, "/admin/adapters/sst2/activate", { version: 2 }, auth());
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe("version_is_current");
    expect(await currentVersion(rig)).toBe(2);
  });

  it("answers 404 for an unknown version or task", async () => {
    const rig = makeRig();
    let res = await postJson(rig, "/admin/adapters/sst2/activate", { version: 9 }, auth());
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("unknown_version");
    res = await postJson(rig, "/admin/adapters/ghost/activate", { version: 1 }, auth());
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("unknown_task");
    expect(await currentVersion(rig)).toBe(1);
  });

  it("validates the body: version is required, a whole number ≥ 1, nothing else", async () => {
    const rig = makeRig();
    await put(rig, "sst2", encodeFakeAdapter({})); // v2
    for (const body of [{}, { version: 0 }, { version: 1.5 }, { version: "1" }, { version: 1, extra: true }]) {
      const res = await postJson(rig, "/admin/adapters/sst2/activate", body, auth());
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await errorOf(res)).code, JSON.stringify(body)).toBe("invalid_request");
    }
    let res = await postJson(rig, "/admin/adapters/sst2/activate", "{nope", auth());
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("malformed_json");
    res = await rig.app.request("/admin/adapters/sst2/activate", { method: "POST", headers: auth() });
    expect(res.status).toBe(400);
    expect(await currentVersion(rig)).toBe(2);
  });
});

describe("DELETE /admin/adapters/{task}", () => {
  it("removes the task; classify then answers 404", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/admin/adapters/sst2", { method: "DELETE", headers: auth() });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect((await postJson(rig, "/classify?task=sst2", { text: "a" })).status).toBe(404);
    const again = await rig.app.request("/admin/adapters/sst2", { method: "DELETE", headers: auth() });
    expect(again.status).toBe(404);
    const tasks = (await (await rig.app.request("/tasks")).json()) as { tasks: Array<{ task: string }> };
    expect(tasks.tasks.map((t) => t.task)).toEqual(["mnli", "stsb"]);
  });
});
