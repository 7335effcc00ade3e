/**
 * The typed client against the real app (routes, auth, error handling) around the fake service,
 * in-process through `fetch: app.fetch`: every method, checked against the answers the app gives to
 * hand-written requests and against the OpenAPI document (the rig checks every response), and every
 * failure surfacing as a `ServerError` with the server's own code and message.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { SktClient, type ErrorBody } from "../../src/client/client.js";
import { serverErrorFrom } from "../helpers/server-error.js";
import { encodeFakeAdapter } from "../helpers/fake-service.js";
import { ADMIN_TOKEN, auth, makeRig, postJson, type TestRig } from "../server/setup.js";

const clientFor = (rig: TestRig, token: string | null = ADMIN_TOKEN) =>
  new SktClient({
    url: "http://localhost",
    token: token ?? undefined,
    fetch: (request) => Promise.resolve(rig.app.fetch(request)),
  });

describe("SktClient against the app", () => {
  it("answers what hand-written requests get, for every read", async () => {
    const rig = makeRig();
    const client = clientFor(rig);
    const raw = async (path: string, init?: RequestInit) => (await rig.app.request(path, init)).json();

    expect(await client.health()).toEqual(await raw("/healthz"));
    expect(await client.ready()).toEqual(await raw("/readyz"));
    expect(await client.listTasks()).toEqual(await raw("/tasks"));
    expect(await client.classify("sst2", ["good", "bad"])).toEqual(
      await (await postJson(rig, "/classify?task=sst2", { texts: ["good", "bad"] })).json(),
    );
    expect(await client.classify("mnli", ["a"], ["b"])).toEqual(
      await (await postJson(rig, "/classify?task=mnli", { texts: ["a"], text_pairs: ["b"] })).json(),
    );
    expect(await client.embed(["x", "y"], { normalize: true })).toEqual(
      await (await postJson(rig, "/embed", { texts: ["x", "y"], normalize: true })).json(),
    );
    expect(await client.listAdapters()).toEqual(await raw("/admin/adapters", { headers: auth() }));
    expect(await client.showAdapter("sst2")).toEqual(await raw("/admin/adapters/sst2", { headers: auth() }));
    expect(await client.metrics()).toMatch(/^# HELP /m);
  });

  it("uploads, activates, rolls back, deletes and reads the audit log", async () => {
    const rig = makeRig();
    const client = clientFor(rig);
    const v2 = await client.uploadAdapter("sst2", encodeFakeAdapter({ labels: ["neg", "pos"] }));
    expect(v2).toMatchObject({ task: "sst2", version: 2, labels: ["neg", "pos"] });
    expect((await client.classify("sst2", ["x"])).adapter_version).toBe(2);
    expect(await client.rollback("sst2")).toMatchObject({ version: 1, labels: ["negative", "positive"] });
    expect(await client.activate("sst2", 2)).toMatchObject({ version: 2 });
    expect(await client.rollback("sst2", 1)).toMatchObject({ version: 1 });
    expect((await client.showAdapter("sst2")).current).toBe(1);
    expect(await client.deleteTask("sst2")).toBeNull();
    expect((await client.listAdapters()).adapters.map((a) => a.task)).not.toContain("sst2");

    const audit = await client.audit({ task: "sst2" });
    expect(audit.entries.map((e) => [e.action, e.result])).toEqual([
      ["upload", "ok"],
      ["rollback", "ok"],
      ["activate", "ok"],
      ["rollback", "ok"],
      ["delete_task", "ok"],
    ]);
    expect((await client.audit({ task: "sst2", limit: 2 })).entries).toEqual(audit.entries.slice(-2));
  });

  it("walks every page of /tasks and /admin/adapters", async () => {
    const tasks = Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`t${String(i).padStart(4, "0")}`, {}]));
    const rig = makeRig({}, { tasks });
    const client = clientFor(rig);
    const listed = await client.listAdapters();
    expect(listed.total).toBe(2500);
    expect(listed.next_cursor).toBeNull();
    expect(listed.adapters.map((a) => a.task)).toEqual(Object.keys(tasks));
    expect((await client.listTasks()).tasks.map((t) => t.task)).toEqual(Object.keys(tasks));
  });

  it("turns the server's error answers into ServerErrors with its code, message and details", async () => {
    const rig = makeRig();
    const client = clientFor(rig);
    const unknown = await serverErrorFrom(client.classify("nope", ["x"]));
    const reference = (await (await postJson(rig, "/classify?task=nope", { texts: ["x"] })).json()) as ErrorBody;
    expect(unknown).toMatchObject({ status: 404, ...reference.error });
    expect(await serverErrorFrom(client.classify("sst2", []))).toMatchObject({ status: 400, code: "invalid_request" });
    expect(await serverErrorFrom(client.rollback("sst2"))).toMatchObject({ status: 409, code: "no_previous_version" });
    expect(await serverErrorFrom(client.uploadAdapter("sst2", new Uint8Array([1, 2])))).toMatchObject({ status: 422 });
    expect(await serverErrorFrom(clientFor(rig, "wrong-token").listAdapters())).toMatchObject({
      status: 401,
      code: "invalid_token",
    });
    expect(await serverErrorFrom(clientFor(rig, null).showAdapter("sst2"))).toMatchObject({
      status: 401,
      code: "unauthorized",
    });
    expect(await serverErrorFrom(clientFor(makeRig({ adminToken: undefined })).audit())).toMatchObject({
      status: 403,
      code: "admin_disabled",
    });
    expect(await serverErrorFrom(clientFor(makeRig({}, { ready: false })).ready())).toMatchObject({
      status: 503,
      code: "not_ready",
    });
  });

  it("reports a server that does not answer as status 0, unreachable", async () => {
    // A port that was just closed: nothing listens there.
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const { port } = s.address() as AddressInfo;
    await new Promise<void>((r) => s.close(() => r()));
    const e = await serverErrorFrom(new SktClient({ url: `http://127.0.0.1:${port}` }).health());
    expect(e).toMatchObject({ status: 0, code: "unreachable" });
    expect(e.message).toMatch(/ECONNREFUSED/);
  });
});
