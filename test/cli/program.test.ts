/**
 * The `skt` program: help on every command (every flag with its default and environment variable,
 * examples), --version, unknown commands and flags answered on one line with a suggestion and exit 2.
 */
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/program.js";
import { CONFIG_OPTIONS } from "../../src/config.js";
import { EVAL_FLAGS, TRAIN_FLAGS } from "../../src/train/commands.js";
import { REPO_ROOT } from "../../scripts/lib/paths.js";
import { runSkt } from "../helpers/skt.js";

let cwd: string;
beforeAll(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), "skt-cli-"));
});
afterAll(async () => rm(cwd, { recursive: true, force: true }));

/** The launcher as a user runs it, from an empty temporary folder. */
const skt = (...args: string[]) => runSkt(args, { cwd, env: { SKT_ADMIN_TOKEN: "" } });

/** The full help of a command as printed (wrapping undone). */
function helpOf(cmd: Command): string {
  let out = "";
  cmd.configureOutput({ writeOut: (s) => (out += s) });
  cmd.outputHelp();
  return out.replace(/\s+/g, " ");
}

function find(program: Command, ...names: string[]): Command {
  return names.reduce((c, n) => c.commands.find((s) => s.name() === n)!, program);
}

function allCommands(c: Command): Command[] {
  return [c, ...c.commands.flatMap(allCommands)];
}

describe("skt help", () => {
  const program = buildProgram();

  it("every command has a description, examples and help for each of its options", () => {
    const leaves = allCommands(program).filter((c) => c.commands.length === 0);
    expect(leaves.map((c) => c.name()).sort()).toEqual([
      "activate",
      "audit",
      "build",
      "classify",
      "delete",
      "embed",
      "eval",
      "eval-set",
      "hash-token",
      "install",
      "list",
      "report",
      "rollback",
      "serve",
      "show",
      "sign",
      "traffic",
      "train",
      "upload",
    ]);
    for (const c of leaves) {
      const help = helpOf(c);
      expect(help, c.name()).toMatch(/Examples: \$ \S*skt .* \$ .*skt /);
      expect(c.description().length, c.name()).toBeGreaterThan(20);
      for (const o of c.options) expect(help, `${c.name()} ${o.long}`).toContain(o.long!);
      for (const o of c.options) expect(o.description.length, `${c.name()} ${o.long}`).toBeGreaterThan(5);
    }
  });

  it("serve's help lists every setting of the table with its default and env var", () => {
    const help = helpOf(find(program, "serve"));
    for (const o of CONFIG_OPTIONS) {
      const def = o.defaultDoc ?? o.default ?? "unset";
      expect(help).toContain(`${o.flag} `);
      expect(help).toContain(`default: ${def}; env: ${o.env}]`);
    }
    expect(help).toContain("--no-semantic-cache");
  });

  it("train's and eval's help list every flag of their tables with its default", () => {
    for (const [name, table] of [
      ["train", TRAIN_FLAGS],
      ["eval", EVAL_FLAGS],
    ] as const) {
      const help = helpOf(find(program, name));
      for (const f of table) {
        expect(help).toContain(f.flag);
        const def = f.defaultDoc ?? f.default;
        if (def !== undefined) expect(help).toContain(`default: ${def}`);
        if (f.env) expect(help).toContain(`env: ${f.env}`);
      }
    }
  });

  it("the client commands name the URL and token variables", () => {
    const help = helpOf(find(program, "adapters", "upload"));
    expect(help).toMatch(/--url <url> .*\[default: http:\/\/127\.0\.0\.1:8080; env: SKT_URL\]/);
    expect(help).toMatch(/--token <token> .*\[default: unset; env: SKT_ADMIN_TOKEN\]/);
  });
});

describe("skt as a process", () => {
  it("hash-token prints the tokens-file entry (the token's sha256, never the token)", async () => {
    const token = "team-a-token-0123456789";
    const r = await runSkt(["hash-token", "--name", "team-a", "--scopes", "read,write", "--tasks", "team-a-*"], {
      cwd,
      stdin: `${token}\n`,
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      name: "team-a",
      sha256: createHash("sha256").update(token).digest("hex"),
      scopes: ["read", "write"],
      tasks: "team-a-*",
    });
    expect(r.stdout + r.stderr).not.toContain(token);
  });

  it("sign --verify accepts the shipped adapters against the project key and refuses an unknown key", async () => {
    const shipped = path.join(REPO_ROOT, "adapters/sst2/v000001.safetensors");
    const ok = await skt("sign", "--verify", "--trusted", path.join(REPO_ROOT, "keys/project.pub.pem"), shipped);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("verified");
    const otherKey = path.join(await mkdtemp(path.join(os.tmpdir(), "skt-key-")), "other.pub.pem");
    await writeFile(otherKey, generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }));
    const bad = await skt("sign", "--verify", "--trusted", otherKey, shipped);
    expect(bad.code).toBe(1);
  });

  it("--help and --version exit 0", async () => {
    const help = await skt("--help");
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toMatch(/Usage: skt/);
    expect(help.stdout).toMatch(/Exit codes: 0 success/);
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
    expect(await skt("--version")).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  it.each([["train"], ["serve"], ["adapters", "list"]])("%s --help exits 0 with usage and examples", async (...cmd) => {
    const r = await skt(...cmd, "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`Usage: skt ${cmd.join(" ")}`));
    expect(r.stdout).toMatch(/Examples:/);
  });

  it.each([
    [["trian"], "skt: unknown command 'trian' (did you mean train?); see 'skt --help'"],
    [["train", "--epoch", "3"], "skt train: unknown option '--epoch' (did you mean --epochs?); see 'skt train --help'"],
    [["serve", "--prot", "80"], "skt serve: unknown option '--prot' (did you mean --port?); see 'skt serve --help'"],
    [
      ["serve", "--adapters-dir", "--port", "80"],
      "skt serve: option '--adapters-dir <value>' argument '--port' is invalid. --adapters-dir needs a value, got \"--port\" (values cannot start with \"--\"); see 'skt serve --help'",
    ],
    [["adapters", "lst"], "skt adapters: unknown command 'lst' (did you mean list?); see 'skt adapters --help'"],
  ])("%j: one line, a suggestion, exit 2", async (args, line) => {
    const r = await skt(...args);
    expect(r).toMatchObject({ code: 2, stdout: "", stderr: `${line}\n` });
  });

  it("a bad setting value is a usage error (exit 2) naming the flag; nothing is written", async () => {
    const r = await skt("serve", "--port", "abc");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^error \(invalid_config\): Invalid configuration:\n {2}--port = "abc": must be a whole number\n$/,
    );
    expect(await readdir(cwd)).toEqual([]);
  });

  it("no command means serve (a bad PORT is serve's configuration error, exit 2); a missing subcommand shows help with exit 2", async () => {
    const r = await runSkt([], { cwd, env: { PORT: "http" } });
    expect(r).toMatchObject({
      code: 2,
      stderr: 'error (invalid_config): Invalid configuration:\n  PORT = "http": must be a whole number\n',
    });
    const adapters = await skt("adapters");
    expect(adapters.code).toBe(2);
    expect(adapters.stderr).toMatch(/^Usage: skt adapters \[options\] \[command\]/);
    expect(await skt("help", "train")).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage: skt train/) });
  });

  it("train without its required flags says which, without a stack trace (exit 2)", async () => {
    const r = await skt("train", "--task", "x");
    expect(r).toMatchObject({
      code: 2,
      stderr: "error (invalid_arguments): train needs --task, --data, --prompt and --out (see skt train --help)\n",
    });
  });
});
