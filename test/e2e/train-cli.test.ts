/**
 * `skt train` as a user runs it with the output redirected (no terminal), from a temporary folder,
 * with one labelled file: progress lines instead of a bar, a held-out slice picked for selection, the
 * adapter written and the final report printed in `eval`'s format; then `skt eval` on the whole file.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { runSkt } from "../helpers/skt.js";
import { toyTsv } from "../helpers/toy-data.js";
import { loadDataset } from "../../src/train/datasets.js";
import { stratifiedHoldout } from "../../src/train/holdout.js";

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "skt-train-cli-"));
  await writeFile(path.join(dir, "train.tsv"), toyTsv(192, 1));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const skt = async (...args: string[]) => {
  const r = await runSkt(args, { cwd: dir, env: { SKT_MODELS_DIR: MODELS_DIR } });
  expect(r.code, r.stderr).toBe(0);
  return r;
};

describe("skt train without a terminal", () => {
  it("one labelled file: progress lines, a held-out slice, the adapter and the final report; then eval", async () => {
    const { stdout, stderr } = await skt(
      "train",
      "--task",
      "toy",
      "--data",
      "train.tsv",
      "--prompt",
      "is it good or bad ?",
      "--label-names",
      "bad,good",
      "--epochs",
      "1",
      "--batch-size",
      "16",
      "--lr",
      "1e-2",
      "--eval-every",
      "5",
      "--progress-every",
      "0",
      "--out",
      "toy.safetensors",
    );
    expect(stderr).toBe("");
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(
      "validation: stratified 19 examples of train.tsv (seed 1) (give --dev FILE or --holdout N to choose)",
    );
    // 173 training examples / 16 per step = 11 steps; with --progress-every 0 every step prints a line.
    const steps = lines.filter((l) => l.startsWith("step "));
    expect(
      steps.map((l) =>
        Number(
          /^step (\d+)\/11 · epoch 1 · loss \d+\.\d{4} · \d+ ex\/s · ETA (\d+s|\d+m \d\ds|–) · dev (–|\d\.\d{4})$/.exec(
            l,
          )?.[1],
        ),
      ),
    ).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(lines.filter((l) => l.startsWith("eval at step ")).map((l) => l.slice(0, 21))).toEqual([
      "eval at step 5/11 · d",
      "eval at step 10/11 · ",
      "eval at step 11/11 · ",
    ]);
    expect(lines).toContain("final report on stratified 19 examples of train.tsv (seed 1):");
    const final = lines.slice(lines.indexOf("final report on stratified 19 examples of train.tsv (seed 1):") + 1);
    expect(final[0]).toBe("task toy, 19 examples");
    expect(final[1]).toMatch(/^accuracy \d+\.\d\d%, macro-F1 \d+\.\d\d%$/);
    expect(await readdir(dir)).toEqual(["toy.safetensors", "toy.safetensors.log.json", "train.tsv"]);

    // What was printed is what was logged.
    const log = JSON.parse(await readFile(path.join(dir, "toy.safetensors.log.json"), "utf8"));
    expect(final[1]).toBe(
      `accuracy ${(log.finalReport.accuracy * 100).toFixed(2)}%, macro-F1 ${(log.finalReport.macroF1 * 100).toFixed(2)}%`,
    );

    // `skt eval` on the held-out slice, written out as a file, gives the same report.
    const data = await loadDataset(path.join(dir, "train.tsv"));
    const { heldOut } = stratifiedHoldout(data.examples, 19, 1);
    await writeFile(
      path.join(dir, "slice.tsv"),
      ["sentence\tlabel", ...heldOut.map((e) => `${e.text}\t${String(e.label)}`)].join("\n") + "\n",
    );
    const evalRun = await skt(
      "eval",
      "--adapter",
      "toy.safetensors",
      "--data",
      "slice.tsv",
      "--label-names",
      "bad,good",
      "--json",
    );
    expect(log.finalReport).toMatchObject({ task: "toy", examples: 19 });
    expect(JSON.parse(evalRun.stdout)).toEqual(log.finalReport);
  });
});
