/**
 * The README's "Releasing a new version safely": the six `skt` commands, in order, against a real
 * server process, with what the server answers after each (its own JSON is the reference).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCliServer, type CliServer } from "../helpers/cli-server.js";

const TOKEN = "release-demo-token-0123456789";
let cli: CliServer;

// v1 always answers negative, v2 always positive: which version answered is visible in the label.
beforeAll(async () => {
  cli = await startCliServer({ task: "sst2", token: TOKEN });
});

afterAll(async () => {
  await cli?.close();
});

const skt = (args: string[]) => cli.skt(args);
const get = async <T>(route: string) =>
  (await fetch(`${cli.server.base}${route}`, { headers: cli.admin })).json() as Promise<T>;

/** The versions that answered `n` single-text requests. */
async function answeredBy(n: number): Promise<number[]> {
  const versions: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${cli.server.base}/classify?task=sst2`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: `a review, number ${i}` }),
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { adapter_version: number; predictions: { label: string }[] };
    // The label says which file answered; it must agree with the version the server reports.
    expect(body.predictions[0].label).toBe(body.adapter_version === 1 ? "negative" : "positive");
    versions.push(body.adapter_version);
  }
  return versions;
}

describe("the README's six-command release of a new sst2 version", () => {
  it("goes from an inactive upload through a canary to 100 %", async () => {
    expect((await skt(["adapters", "upload", "v1.safetensors"])).code).toBe(0);

    // 1. stored inactive as v2; v1 still serves
    const up = await skt(["adapters", "upload", "v2.safetensors", "--no-activate"]);
    expect(up).toMatchObject({ code: 0, stderr: "" });
    expect(up.stdout).toMatch(/^task sst2 v2 stored inactive \(current: v1\)/);
    expect(await answeredBy(5)).toEqual([1, 1, 1, 1, 1]);

    // 2. the listing shows v1 current and v2 inactive
    const show = await skt(["adapters", "show", "sst2"]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^1 +current /m);
    expect(show.stdout).toMatch(/^2 +inactive /m);

    // 3. 10 % of the rows to v2: with 20 one-text requests the split is deterministic by rows
    expect((await skt(["adapters", "traffic", "sst2", "--canary-version", "2", "--canary-percent", "10"])).code).toBe(
      0,
    );
    const at10 = await answeredBy(20);
    expect(at10.filter((v) => v === 2).length).toBe(2);

    // 4. 50 %
    expect((await skt(["adapters", "traffic", "sst2", "--canary-version", "2", "--canary-percent", "50"])).code).toBe(
      0,
    );
    const at50 = await answeredBy(20);
    expect(at50.filter((v) => v === 2).length).toBe(10);

    // 5. 100 %: v2 current, and the canary leaves the split in the same step
    expect((await skt(["adapters", "activate", "sst2", "2"])).code).toBe(0);
    expect(await answeredBy(5)).toEqual([2, 2, 2, 2, 2]);
    const traffic = await get<{ canary: unknown; current: number }>("/admin/adapters/sst2/traffic");
    expect(traffic).toMatchObject({ current: 2, canary: null });

    // 6. end the split (already empty: clearing is still accepted and changes nothing)
    expect((await skt(["adapters", "traffic", "sst2", "--clear"])).code).toBe(0);
    expect(await get("/admin/adapters/sst2/traffic")).toMatchObject({ current: 2, canary: null, shadow: null });
    expect(await answeredBy(3)).toEqual([2, 2, 2]);
  });
});
