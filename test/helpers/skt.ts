/** Runs the `skt` launcher (bin/skt.js) as a user does: a child process, in a folder the test chooses. */
import { spawn } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "../../scripts/lib/paths.js";

export interface SktRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runSkt(
  args: readonly string[],
  o: { cwd: string; env?: Record<string, string>; stdin?: string },
): Promise<SktRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, "bin/skt.js"), ...args], {
      cwd: o.cwd,
      env: { ...process.env, ...o.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(o.stdin ?? "");
  });
}
