import { readFileSync } from "node:fs";
import path from "node:path";
import { SST2_DIR } from "./paths.js";

/** Sentences and labels of an SST-2 split, read directly (independently of src/train/datasets). */
export function readSst2(split: "dev" | "train"): { sentence: string; label: number }[] {
  const lines = readFileSync(path.join(SST2_DIR, `${split}.tsv`), "utf8")
    .split("\n")
    .slice(1)
    .filter((l) => l.length > 0);
  return lines.map((l) => {
    const [sentence, label] = l.split("\t");
    return { sentence, label: Number(label) };
  });
}
