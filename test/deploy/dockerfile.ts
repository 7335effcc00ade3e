/** Reads what the deployment tests need from a Dockerfile: its stages and the final stage's CMD. */
import { readFile } from "node:fs/promises";

export interface DockerStage {
  name: string;
  /** Instructions with continuation lines joined and comments dropped. */
  instructions: string[];
}

export async function dockerStages(file: string): Promise<DockerStage[]> {
  const text = await readFile(file, "utf8");
  const lines = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const stages: DockerStage[] = [];
  for (const line of lines) {
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ name: from[1] ?? String(stages.length), instructions: [] });
    else stages.at(-1)?.instructions.push(line);
  }
  return stages;
}

/** The final stage's `CMD` in exec form (a JSON array); throws for the shell form. */
export async function dockerfileCmd(file: string): Promise<string[]> {
  const last = (await dockerStages(file)).at(-1);
  const cmd = last?.instructions.filter((i) => /^CMD\s/i.test(i)).at(-1);
  if (!cmd) throw new Error(`${file}: the final stage has no CMD`);
  const argv: unknown = JSON.parse(cmd.replace(/^CMD\s+/i, ""));
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === "string"))
    throw new Error(`${file}: CMD is not in exec form`);
  return argv;
}
