/**
 * `npx tsx scripts/sign.ts --key PRIVATE.pem FILE…` signs adapter files in place;
 * `npx tsx scripts/sign.ts --verify --trusted PEM-OR-FOLDER[,…] FILE…` checks them
 * (see src/adapters/sign-command.ts and docs/adapter-format.md, "Signatures").
 */
import { isSktError } from "../src/errors.js";
import { signCommand } from "../src/adapters/sign-command.js";

signCommand(process.argv.slice(2)).catch((e: unknown) => {
  console.error(isSktError(e) ? e.message : e);
  process.exit(isSktError(e) && e.code === "invalid_arguments" ? 2 : 1);
});
