/**
 * `npx tsx scripts/hash-token.ts --name NAME [--scopes read,write,traffic] [--tasks GLOB] < token`:
 * print the SKT_ADMIN_TOKENS_FILE entry for the token on stdin (see src/server/auth/hash-token.ts).
 */
import { isSktError } from "../src/errors.js";
import { hashTokenCommand } from "../src/server/auth/hash-token.js";

hashTokenCommand(process.argv.slice(2)).catch((e: unknown) => {
  console.error(isSktError(e) ? e.message : e);
  process.exit(2);
});
