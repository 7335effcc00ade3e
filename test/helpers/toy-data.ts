/** Small labelled files for training tests. */
import { seededRandom } from "./numeric.js";

/** A separable toy task: the label is decided by which of two cue words the text contains. */
export function toyTsv(count: number, seed: number): string {
  const rand = seededRandom(seed);
  const filler = [
    "the",
    "movie",
    "was",
    "a",
    "story",
    "about",
    "people",
    "and",
    "their",
    "day",
    "in",
    "town",
    "with",
    "friends",
  ];
  const lines = ["sentence\tlabel"];
  for (let i = 0; i < count; i++) {
    const label = i % 2;
    const words = Array.from({ length: 4 + Math.floor(rand() * 6) }, () => filler[Math.floor(rand() * filler.length)]);
    words.splice(Math.floor(rand() * words.length), 0, label ? "wonderful" : "terrible");
    lines.push(`${words.join(" ")}\t${label}`);
  }
  return lines.join("\n") + "\n";
}
