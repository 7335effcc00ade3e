/**
 * `skt adapters traffic` as a user runs it (the launcher, a child process) against an HTTP server
 * around the fake service: show, set canary and shadow, replace, clear, and the usage and server
 * errors. The server's own JSON, fetched directly, is the reference for what the command prints.
 */
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFakeAdapter } from "../helpers/fake-service.js";
import { runSkt } from "../helpers/skt.js";
import { ADMIN_TOKEN, makeRig, type TestRig } from "../server/setup.js";

let rig: TestRig;
let server: ServerType;
let base: string;

beforeAll(async () => {
  rig = makeRig();
  await rig.service.upload("sst2", encodeFakeAdapter({}));
  await rig.service.upload("sst2", encodeFakeAdapter({}));
  await rig.service.rollback("sst2", 1); // v1 current, v2 and v3 stored
  await new Promise<void>((resolve) => {
    server = serve({ fetch: rig.app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const skt = (args: string[]) =>
  runSkt(["adapters", "traffic", ...args], { cwd: os.tmpdir(), env: { SKT_URL: base, SKT_ADMIN_TOKEN: ADMIN_TOKEN } });

const serverState = async () =>
  (await fetch(`${base}/admin/adapters/sst2/traffic`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();

describe("skt adapters traffic", () => {
  it("sets, shows, replaces and clears a split, printing what the server answers", async () => {
    const set = await skt([
      "sst2",
      "--canary-version",
      "2",
      "--canary-percent",
      "12.5",
      "--shadow-version",
      "3",
      "--json",
    ]);
    expect(set).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(set.stdout)).toEqual(await serverState());
    expect(JSON.parse(set.stdout)).toMatchObject({
      current: 1,
      canary: { version: 2, percent: 12.5 },
      shadow: { version: 3 },
    });

    const shown = await skt(["sst2"]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^task sst2: current v1, canary v2 at 12\.5 %, shadow v3 \(since \S+\)\n/);
    expect(shown.stdout).toContain("shadow v3: 0 of 0 rows agree with the current version");

    // The flags give the whole split: the canary left out is removed.
    const shadowOnly = await skt(["sst2", "--shadow-version", "2"]);
    expect(shadowOnly.code).toBe(0);
    expect(await serverState()).toMatchObject({ canary: null, shadow: { version: 2 } });

    expect((await skt(["sst2", "--clear"])).stdout).toMatch(/^task sst2: current v1, canary none, shadow none\n$/);
    expect(await serverState()).toMatchObject({ canary: null, shadow: null });
  }, 60_000);

  it("refuses bad flags before calling the server, and prints the server's refusals", async () => {
    const cases: [string[], RegExp][] = [
      [["sst2", "--canary-version", "2"], /--canary-version and --canary-percent go together/],
      [["sst2", "--canary-version", "2", "--canary-percent", "120"], /--canary-percent must be a number from 0 to 100/],
      [["sst2", "--clear", "--shadow-version", "2"], /--clear removes the canary and the shadow: give it alone/],
      [["sst2", "--shadow-version", "x"], /--shadow-version must be a version number/],
    ];
    for (const [args, message] of cases) {
      const r = await skt(args);
      expect(r.code, args.join(" ")).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    const current = await skt(["sst2", "--shadow-version", "1"]);
    expect(current.code).not.toBe(0);
    expect(current.stderr).toMatch(/server error 409 \(version_is_current\)/);
    expect(await serverState()).toMatchObject({ canary: null, shadow: null });
  }, 60_000);
});
