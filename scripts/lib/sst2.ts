/**
 * SST-2 splits read directly from their TSV files (sentence, tab, 0/1 label, one header line),
 * independently of src/train/datasets.ts, so tests can use them as a reference for it.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { SST2_DIR } from "./paths.js";

export type Sst2Split = "dev" | "train";

/** Sentences and labels of a split, in file order. */
export function readSst2(split: Sst2Split): { sentence: string; label: number }[] {
  return readFileSync(path.join(SST2_DIR, `${split}.tsv`), "utf8")
    .split("\n")
    .slice(1)
    .filter((l) => l.length > 0)
    .map((l) => {
      const [sentence, label] = l.split("\t");
      return { sentence, label: Number(label) };
    });
}

/** The sentences of a split, in file order. */
export function readSst2Sentences(split: Sst2Split): string[] {
  return readSst2(split).map((r) => r.sentence);
}
