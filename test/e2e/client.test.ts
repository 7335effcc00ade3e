/**
 * The operator client (`skt adapters …` including activate and audit, `skt classify`, `skt embed`) against a real server process,
 * run as a user runs it (the launcher, from a temporary folder). The server's own JSON, fetched
 * directly, is the reference for what the client shows.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/lib/server-process.js";
import { startCliServer, type CliServer } from "../helpers/cli-server.js";

const TOKEN = "client-e2e-token-0123456789";
let cli: CliServer;

beforeAll(async () => {
  cli = await startCliServer({ task: "sentiment", token: TOKEN });
});

afterAll(async () => {
  await cli?.close();
});

/** `skt …` from the temporary folder, with the server's URL and token in the environment unless overridden. */
const skt = (args: string[], o: { env?: Record<string, string>; stdin?: string } = {}) => cli.skt(args, o);

const direct = async (route: string, init: RequestInit = {}) =>
  (await fetch(`${cli.server.base}${route}`, init)).json();

describe("skt operator client against a server process", () => {
  it("uploads, lists, shows, classifies, rolls back and deletes, matching the server's own answers", async () => {
    expect(await skt(["adapters", "list"])).toEqual({ code: 0, stdout: "no adapters\n", stderr: "" });

    const up1 = await skt(["adapters", "upload", "v1.safetensors"]);
    expect(up1).toMatchObject({ code: 0, stderr: "" });
    expect(up1.stdout).toMatch(
      /^task sentiment v1 is current \(prompt, single_label_classification, labels negative, positive, [\d,]+ parameters\)\nsha256 [0-9a-f]{64}\n$/,
    );
    const up2 = await skt(["adapters", "upload", "v2.safetensors", "--json"]);
    expect(JSON.parse(up2.stdout)).toMatchObject({ task: "sentiment", version: 2, labels: ["negative", "positive"] });

    const list = await skt(["adapters", "list"]);
    expect(list.stdout).toBe("TASK       VERSION\nsentiment  2\n");
    expect(JSON.parse((await skt(["adapters", "list", "--json"])).stdout)).toEqual(
      await direct("/admin/adapters", { headers: cli.admin }),
    );

    const details = await direct("/admin/adapters/sentiment", { headers: cli.admin });
    expect(JSON.parse((await skt(["adapters", "show", "sentiment", "--json"])).stdout)).toEqual(details);
    const show = (await skt(["adapters", "show", "sentiment"])).stdout.trimEnd().split("\n");
    expect(show[0]).toMatch(/^VERSION +STATE +GATE +BYTES +CREATED +VARIANT +LABELS +PROMPT$/);
    const versions = (
      details as { versions: { version: number; current: boolean; bytes: number; created_at: string }[] }
    ).versions;
    expect(show.slice(1)).toEqual(
      versions.map((v) =>
        expect.stringMatching(
          new RegExp(
            `^${v.version} +${v.current ? "current" : "inactive"} +- +${v.bytes} +${v.created_at} +prompt +negative,positive +`,
          ),
        ),
      ),
    );
    expect(versions.map((v) => v.current)).toEqual([false, true]);

    const classify = await skt(["classify", "--task", "sentiment", "a fine film", "awful"]);
    expect(classify).toMatchObject({ code: 0, stderr: "" });
    expect(classify.stdout.split("\n").slice(0, 4)).toEqual([
      "task sentiment v2",
      expect.stringMatching(/^TEXT +LABEL +SCORE +TOKENS$/),
      expect.stringMatching(/^a fine film +positive +1\.0000 +\d+$/),
      expect.stringMatching(/^awful +positive +1\.0000 +\d+$/),
    ]);
    const reference = await direct("/classify?task=sentiment", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ texts: ["a fine film", "awful"] }),
    });
    expect(
      JSON.parse((await skt(["classify", "--task", "sentiment", "--json", "a fine film", "awful"])).stdout),
    ).toEqual(reference);
    // Texts one per line on stdin when none are given.
    expect(
      JSON.parse(
        (await skt(["classify", "--task", "sentiment", "--json"], { stdin: "a fine film\n\nawful\n" })).stdout,
      ),
    ).toEqual(reference);

    const rollback = await skt(["adapters", "rollback", "sentiment"]);
    expect(rollback.stdout).toMatch(/^task sentiment v1 is current/);
    expect(await direct("/tasks")).toMatchObject({
      tasks: [expect.objectContaining({ task: "sentiment", version: 1 })],
    });
    expect((await skt(["adapters", "rollback", "sentiment", "--version", "2", "--json"])).stdout).toMatch(
      /"version": 2/,
    );

    expect(await skt(["adapters", "delete", "sentiment"])).toEqual({
      code: 0,
      stdout: "task sentiment deleted\n",
      stderr: "",
    });
    expect(await direct("/admin/adapters", { headers: cli.admin })).toEqual({
      adapters: [],
      total: 0,
      next_cursor: null,
    });
  });

  it("shows the server's errors with status, code and message (exit 1), and never prints the token", async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["adapters", "show", "nope"], {}, /^server error 404 \(unknown_task\): .*"nope"\n$/],
      [["adapters", "rollback", "nope"], {}, /^server error 404 \(unknown_task\): /],
      [["adapters", "list"], { SKT_ADMIN_TOKEN: "wrong-token" }, /^server error 401 \(invalid_token\): /],
      [["adapters", "show", "Bad Name"], {}, /^server error 400 \(\w+\): .*task/],
      [["classify", "--task", "nope", "text"], {}, /^server error 404 \(unknown_task\): /],
    ];
    for (const [args, env, stderr] of cases) {
      const r = await skt(args, { env });
      expect(r, args.join(" ")).toMatchObject({ code: 1, stdout: "" });
      expect(r.stderr, args.join(" ")).toMatch(stderr);
      expect(r.stderr.split("\n").filter(Boolean), args.join(" ")).toHaveLength(1);
      expect(r.stderr + r.stdout).not.toContain(TOKEN);
      expect(r.stderr + r.stdout).not.toContain("wrong-token");
    }
  });

  it("refuses without a token (exit 2) and says when the server cannot be reached (exit 3)", async () => {
    expect(await skt(["adapters", "list"], { env: { SKT_ADMIN_TOKEN: "" } })).toEqual({
      code: 2,
      stdout: "",
      stderr: "error (invalid_arguments): the admin API needs a token: set SKT_ADMIN_TOKEN (or pass --token)\n",
    });
    const closed = await freePort();
    const down = await skt(["adapters", "list", "--url", `http://127.0.0.1:${closed}`]);
    expect(down).toMatchObject({ code: 3, stdout: "" });
    expect(down.stderr).toBe(
      `error (unreachable): cannot reach the server at http://127.0.0.1:${closed}: ECONNREFUSED\n`,
    );
    expect(await skt(["adapters", "activate", "sentiment", "zero"])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/<version> must be a version number/),
    });
  });

  it("activate: makes an earlier, then a later, stored version current; the current one is a 409", async () => {
    await skt(["adapters", "upload", "v1.safetensors"]);
    await skt(["adapters", "upload", "v2.safetensors"]);
    const back = await skt(["adapters", "activate", "sentiment", "1", "--json"]);
    expect(back).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(back.stdout)).toMatchObject({ task: "sentiment", version: 1, labels: ["negative", "positive"] });
    expect(await direct("/tasks")).toMatchObject({
      tasks: [expect.objectContaining({ task: "sentiment", version: 1 })],
    });
    // v1's head favours "negative" (headBias [30, -30]): the swap is what classify serves.
    expect((await skt(["classify", "--task", "sentiment", "a fine film"])).stdout).toMatch(
      /^task sentiment v1\n.*\na fine film +negative /,
    );

    const forward = await skt(["adapters", "activate", "sentiment", "2"]);
    expect(forward).toMatchObject({ code: 0, stderr: "" });
    expect(forward.stdout).toMatch(
      /^task sentiment v2 is current \(prompt, single_label_classification, labels negative, positive, [\d,]+ parameters\)\n$/,
    );
    expect(await direct("/tasks")).toMatchObject({
      tasks: [expect.objectContaining({ task: "sentiment", version: 2 })],
    });

    const again = await skt(["adapters", "activate", "sentiment", "2"]);
    expect(again).toMatchObject({ code: 1, stdout: "" });
    expect(again.stderr).toMatch(/^server error 409 \(version_is_current\): [^\n]+\n$/);
    const missing = await skt(["adapters", "activate", "sentiment", "7"]);
    expect(missing).toMatchObject({ code: 1, stdout: "" });
    expect(missing.stderr).toMatch(/^server error 404 \(version_not_found\): [^\n]+\n$/);
    expect(await direct("/tasks")).toMatchObject({
      tasks: [expect.objectContaining({ task: "sentiment", version: 2 })],
    });
    await skt(["adapters", "delete", "sentiment"]);
  });

  it("embed: prints one vector per text, matching the server's own /embed answer", async () => {
    const reference = (await direct("/embed", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ texts: ["first sentence", "second one"] }),
    })) as { model: string; embeddings: number[][]; tokens: number[] };
    expect(reference.embeddings).toHaveLength(2);
    const r = await skt(["embed", "--json", "first sentence", "second one"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(r.stdout)).toEqual(reference);
    const table = await skt(["embed", "first sentence", "second one"]);
    expect(table).toMatchObject({ code: 0, stderr: "" });
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`model ${reference.model}`);
    expect(lines[1]).toMatch(/^TEXT +TOKENS +DIMS +NORM +FIRST VALUES$/);
    reference.embeddings.forEach((e, i) => {
      expect(lines[2 + i]).toMatch(
        new RegExp(
          `^${["first sentence", "second one"][i]} +${reference.tokens[i]} +${e.length} +${Math.hypot(...e).toFixed(4)} +`,
        ),
      );
    });
  });

  it("adapters audit: shows the server's audit log as a table and, with --json, as the server sent it", async () => {
    const since = new Date().toISOString(); // entries of the earlier tests end before this
    expect((await skt(["adapters", "upload", "v1.safetensors"])).code).toBe(0);
    const reference = (await direct(`/admin/audit?task=sentiment&since=${encodeURIComponent(since)}`, {
      headers: cli.admin,
    })) as { entries: { actor: string; action: string; version: number; status: number }[] };
    expect(reference.entries.map((e) => [e.actor, e.action, e.version, e.status])).toEqual([
      ["admin", "upload", 1, 201],
    ]);
    expect(
      JSON.parse((await skt(["adapters", "audit", "--task", "sentiment", "--since", since, "--json"])).stdout),
    ).toEqual(reference);

    const table = await skt(["adapters", "audit", "--task", "sentiment", "--since", since, "--limit", "5"]);
    expect(table).toMatchObject({ code: 0, stderr: "" });
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^TIME +ACTOR +ACTION +TASK +VERSION +STATUS +RESULT +CODE +CLIENT$/);
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^\S+ +admin +upload +sentiment +1 +201 +ok +- +\S+$/)]);
    expect(await skt(["adapters", "audit", "--task", "never-touched"])).toEqual({
      code: 0,
      stdout: "no audit entries\n",
      stderr: "",
    });
    expect(await skt(["adapters", "audit", "--limit", "0"])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--limit must be a whole number/),
    });
    const badSince = await skt(["adapters", "audit", "--since", "yesterday"]);
    expect(badSince).toMatchObject({ code: 1, stdout: "" });
    expect(badSince.stderr).toMatch(/^server error 400 \(\w+\): .*since/);
    await skt(["adapters", "delete", "sentiment"]);
  });
});
