/** `install`: validates adapter files against the backbone and adds them to a store, offline. */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { encodeAdapter } from "../../src/adapters/format.js";
import { AdapterStore } from "../../src/adapters/store.js";
import { syntheticAdapter, syntheticAdapterBytes } from "../../src/adapters/synthetic.js";
import { isValidTaskName } from "../../src/adapters/task-name.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
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
const cli = (...args: string[]) =>
  skt("install", ...args, "--adapters-dir", path.join(dir, "adapters"), "--models-dir", MODELS_DIR);

describe("install command", () => {
  it("adds a valid adapter as the task's next current version", async () => {
    const bytes = syntheticAdapterBytes(assets, { task: "offline", seed: 4 });
    await writeFile(path.join(dir, "a.safetensors"), bytes);
    const { code, stdout } = await cli(path.join(dir, "a.safetensors"));
    expect(code).toBe(0);
    expect(stdout).toMatch(/task offline v1 is now current/);
    expect((await readFile(path.join(dir, "adapters", "offline", "CURRENT"), "utf8")).trim()).toBe("1");
    expect(
      Buffer.compare(await readFile(path.join(dir, "adapters", "offline", "v000001.safetensors")), Buffer.from(bytes)),
    ).toBe(0);
  });

  it("refuses an invalid file with the validator's code and writes nothing", async () => {
    const bytes = syntheticAdapterBytes(assets, { task: "broken", seed: 5 });
    await writeFile(path.join(dir, "bad.safetensors"), bytes.subarray(0, bytes.length - 10));
    const err = await cli(path.join(dir, "bad.safetensors"));
    expect(err).toMatchObject({ code: 1 });
    expect(err.stderr).toMatch(
      /error \((file_too_small|offsets_out_of_bounds|offsets_size_mismatch|header_length_out_of_bounds)\)/,
    );
    expect(await taskFolders()).toEqual(["offline"]);
  });

  it("refuses what only preparation catches (a prompt that no longer tokenizes to its declared length), like an HTTP upload", async () => {
    const file = syntheticAdapter(assets, { task: "drifted", seed: 6 });
    // Same prompt_length (so every tensor shape still fits), different text: decoding passes, preparing must not.
    file.metadata = { ...file.metadata, promptText: `${file.metadata.promptText} and then some more words here` };
    await writeFile(path.join(dir, "drifted.safetensors"), encodeAdapter(file, assets.dims));
    const err = await cli(path.join(dir, "drifted.safetensors"));
    expect(err).toMatchObject({ code: 1 });
    expect(err.stderr).toMatch(/error \(prompt_length_mismatch\)/);
    expect(await taskFolders()).toEqual(["offline"]);
  });

  it("a second file for the same task becomes v2, and the store's index agrees with the files", async () => {
    await writeFile(path.join(dir, "b.safetensors"), syntheticAdapterBytes(assets, { task: "offline", seed: 7 }));
    const { stdout } = await cli(path.join(dir, "b.safetensors"));
    expect(stdout).toMatch(/task offline v2 is now current/);
    const store = new AdapterStore(path.join(dir, "adapters"));
    const opened = await store.open();
    expect(opened).toMatchObject({ rebuilt: false, reread: 0 });
    expect(store.index.get("offline")?.version).toBe(2);
  });

  it("refuses a flag where a value belongs (exit 2) instead of making a folder named after the flag", async () => {
    const bytes = syntheticAdapterBytes(assets, { task: "flaglike", seed: 6 });
    await writeFile(path.join(dir, "flaglike.safetensors"), bytes);
    const before = await readdir(dir);
    const err = await skt(
      "install",
      path.join(dir, "flaglike.safetensors"),
      "--adapters-dir",
      "--models-dir",
      MODELS_DIR,
    );
    expect(err).toMatchObject({ code: 2 });
    expect(err.stderr).toMatch(/--adapters-dir needs a value, got "--models-dir"/);
    expect(await readdir(dir)).toEqual(before);
  });
});

async function taskFolders(): Promise<string[]> {
  return (await readdir(path.join(dir, "adapters"))).filter(isValidTaskName).sort();
}
