/**
 * Entry point of the `skt` command line (bin/skt.js, `npm start`, `npm run train`…). The commands
 * are in src/cli/ and src/train/commands.ts; this file only runs the program and sets the exit code.
 */
import { runCli } from "./cli/program.js";

// `skt … | head` closes the pipe early: stop quietly instead of an EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
}

const code = await runCli(process.argv.slice(2));
// Failures exit at once (a half-started engine must not keep the process alive); success lets
// running work (the server) keep the process going.
if (code !== 0) process.exit(code);
