/** `install`: validates adapter files against the backbone and adds them to a store, offline. */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { syntheticAdapterBytes } from "../../src/adapters/synthetic.js";
import { MODELS_DIR } from "../helpers/paths.js";
import { runSkt } from "../helpers/skt.js";

let dir: string;
let assets: BackboneAssets;

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
  dir = await mkdtemp(path.join(os.tmpdir(), "skt-install-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

// The `skt` launcher, run from the temporary folder: nothing the command writes can land in the repository.
const skt = (...args: string[]) => runSkt(args, { cwd: dir });
const cli = (...args: string[]) => skt("install", ...args, "--adapters-dir", path.join(dir, "adapters"), "--models-dir", MODELS_DIR);

describe("install command", () => {
  it("adds a valid adapter as the task's next current version", async () => {
    const bytes = syntheticAdapterBytes(assets, { task: "offline", seed: 4 });
    await writeFile(path.join(dir, "a.safetensors"), bytes);
    const { code, stdout } = await cli(path.join(dir, "a.safetensors"));
    expect(code).toBe(0);
    expect(stdout).toMatch(/task offline v1 is now current/);
    expect((await readFile(path.join(dir, "adapters", "offline", "CURRENT"), "utf8")).trim()).toBe("1");
    expect(Buffer.compare(await readFile(path.join(dir, "adapters", "offline", "v000001.safetensors")), Buffer.from(bytes))).toBe(0);
  });

  it("refuses an invalid file with the validator's code and writes nothing", async () => {
    const bytes = syntheticAdapterBytes(assets, { task: "broken", seed: 5 });
    await writeFile(path.join(dir, "bad.safetensors"), bytes.subarray(0, bytes.length - 10));
    const err = await cli(path.join(dir, "bad.safetensors"));
    expect(err).toMatchObject({ code: 1 });
    expect(err.stderr).toMatch(/error \((file_too_small|offsets_out_of_bounds|offsets_size_mismatch|header_length_out_of_bounds)\)/);
    expect(await readdir(path.join(dir, "adapters"))).toEqual(["offline"]);
  });

  it("refuses a flag where a value belongs (exit 2) instead of making a folder named after the flag", async () => {
    const bytes = syntheticAdapterBytes(assets, { task: "flaglike", seed: 6 });
    await writeFile(path.join(dir, "b.safetensors"), bytes);
    const before = await readdir(dir);
    const err = await skt("install", path.join(dir, "b.safetensors"), "--adapters-dir", "--models-dir", MODELS_DIR);
    expect(err).toMatchObject({ code: 2 });
    expect(err.stderr).toMatch(/--adapters-dir needs a value, got "--models-dir"/);
    expect(await readdir(dir)).toEqual(before);
  });
});
