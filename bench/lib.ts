/** Shared helpers of the benchmark scripts. */
import { readFile } from "node:fs/promises";
import path from "node:path";

export const SST2_DIR = process.env.SST2_DIR ?? path.resolve("../shared/data/sst2");

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export async function readSst2Sentences(split: "dev" | "train"): Promise<string[]> {
  const text = await readFile(path.join(SST2_DIR, `${split}.tsv`), "utf8");
  return text.split("\n").slice(1).filter((l) => l.length > 0).map((l) => l.split("\t")[0]);
}
