/**
 * The release-safety helpers: `hash-token` (an SKT_ADMIN_TOKENS_FILE entry for a token on stdin) and
 * `sign` (Ed25519-sign adapter files, or verify them). Commander gives them help and suggestions; the
 * work is done by the modules that own the formats (server/auth/hash-token.ts, adapters/sign-command.ts).
 */
import type { Command } from "commander";

export function addSecurityCommands(program: Command): void {
  program
    .command("hash-token")
    .summary("print the SKT_ADMIN_TOKENS_FILE entry for a token read from stdin")
    .description(
      "Read an admin token from stdin (first line) and print its tokens-file entry: the token's sha256, never the token.",
    )
    .requiredOption("--name <name>", "the token's name (shown in the audit log)")
    .option("--scopes <list>", "comma-separated scopes: read, write, traffic", "read")
    .option("--tasks <glob>", "task-name glob the token may act on", "*")
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt hash-token --name team-a --scopes read,write --tasks 'team-a-*' < team-a.token\n  $ openssl rand -base64 32 | tr -d '\\n' | tee ci.token | skt hash-token --name ci --scopes read,write",
    )
    .action(async (opts: { name: string; scopes: string; tasks: string }) => {
      const { hashTokenCommand } = await import("../server/auth/hash-token.js");
      await hashTokenCommand(["--name", opts.name, "--scopes", opts.scopes, "--tasks", opts.tasks]);
    });

  program
    .command("sign")
    .summary("sign adapter files (Ed25519), or verify their signatures")
    .description(
      "Sign adapter files in place with an Ed25519 private key (PEM), or with --verify check them against trusted public keys.",
    )
    .argument("<files...>", "adapter .safetensors files")
    .option("--key <pem>", "private key (PEM) to sign with")
    .option("--verify", "verify instead of signing")
    .option("--trusted <list>", "with --verify: public keys (PEM files or folders), comma-separated")
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt sign --key ~/.config/skt-signing/project.key.pem build/sst2.safetensors\n  $ skt sign --verify --trusted keys/project.pub.pem adapters/*/v*.safetensors",
    )
    .action(async (files: string[], opts: { key?: string; verify?: boolean; trusted?: string }) => {
      const { signCommand } = await import("../adapters/sign-command.js");
      const argv = [
        ...(opts.key ? ["--key", opts.key] : []),
        ...(opts.verify ? ["--verify"] : []),
        ...(opts.trusted ? ["--trusted", opts.trusted] : []),
        ...files,
      ];
      await signCommand(argv);
    });
}
