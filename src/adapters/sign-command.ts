/**
 * `sign --key PRIVATE.pem FILE…`: sign adapter files in place (Ed25519; see signature.ts), each
 * replaced atomically (temp file, fsync, rename). `sign --verify --trusted KEYS FILE…` checks them.
 * The private key never leaves the machine that signs; servers need only the public half.
 */
import { createPrivateKey, randomBytes } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { SktError } from "../errors.js";
import { TrustedKeys, checkAdapterSignature, signAdapter, signingDigest } from "./signature.js";

function usage(message: string): SktError {
  return new SktError(
    "bad_request",
    "invalid_arguments",
    `sign: ${message}\nusage: sign --key PRIVATE.pem FILE…   |   sign --verify --trusted PEM-OR-FOLDER[,…] FILE…`,
  );
}

async function replaceFile(file: string, bytes: Uint8Array): Promise<void> {
  const temp = path.join(path.dirname(file), `.tmp-sign-${randomBytes(6).toString("hex")}`);
  const h = await open(temp, "wx", 0o644);
  try {
    await h.writeFile(bytes);
    await h.sync();
  } finally {
    await h.close();
  }
  try {
    await rename(temp, file);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}

export async function signCommand(argv: readonly string[], log: (line: string) => void = console.log): Promise<void> {
  let values: { key?: string; verify?: boolean; trusted?: string };
  let files: string[];
  try {
    ({ values, positionals: files } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { key: { type: "string" }, verify: { type: "boolean" }, trusted: { type: "string" } },
    }));
  } catch (e) {
    throw usage((e as Error).message);
  }
  if (files.length === 0) throw usage("name at least one adapter file");
  if (values.verify) {
    if (!values.trusted) throw usage("--verify needs --trusted");
    const keys = TrustedKeys.load(values.trusted);
    let bad = 0;
    for (const file of files) {
      const check = checkAdapterSignature(new Uint8Array(await readFile(file)), keys);
      if (check.state !== "verified") bad++;
      log(`${file}: ${check.state}${"keyId" in check && check.keyId ? ` (key ${check.keyId})` : ""}${check.state === "invalid" ? `: ${check.reason}` : ""}`);
    }
    if (bad > 0) throw new SktError("invalid_adapter", "bad_signature", `${bad} of ${files.length} file(s) are not signed by a trusted key`);
    return;
  }
  if (!values.key) throw usage("--key is required");
  let key;
  try {
    key = createPrivateKey(await readFile(values.key, "utf8"));
  } catch (e) {
    throw usage(`cannot read the private key ${values.key}: ${(e as Error).message}`);
  }
  for (const file of files) {
    const signed = signAdapter(new Uint8Array(await readFile(file)), key);
    await replaceFile(file, signed);
    const meta = checkAdapterSignature(signed, TrustedKeys.of([]));
    log(`${file}: signed by key ${"keyId" in meta ? meta.keyId : "?"} (digest ${signingDigest(signed)})`);
  }
}
