/**
 * Ed25519 signatures on adapter files (node:crypto). Defined in docs/adapter-format.md, "Signatures":
 *
 *   C      = the header object with `__metadata__.signature` and `__metadata__.signature_key_id`
 *            removed, serialized canonically (RFC 8785 JCS: keys sorted by UTF-16 code units at
 *            every depth, no whitespace; for a header's strings and integers this is
 *            JSON.stringify with sorted keys)
 *   digest = sha256( u64le(byteLength(C)) ‖ C ‖ the file's data buffer )
 *            (the sha256 of the file as it would be, unsigned, without header padding)
 *   signed = UTF-8 "sk-tuning adapter v1 sha256:" + hex(digest)
 *   signature        = base64(Ed25519(private key, signed))       (64 bytes → 88 characters)
 *   signature_key_id = hex(sha256(raw 32-byte public key))[0..16]
 *
 * Signing changes only the header (the data buffer and its offsets stay), so a signed file decodes
 * to the same adapter, and re-signing replaces the old signature.
 */
import { createHash, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { SktError } from "../errors.js";
// canonicalJson (keys sorted by code units at every depth) is RFC 8785 for what a header holds.
import { DEFAULT_MAX_BYTES, canonicalJson, readHeader, withHeader } from "./format.js";

export const SIGNATURE_FIELD = "signature";
export const KEY_ID_FIELD = "signature_key_id";
const SIGNED_PREFIX = "sk-tuning adapter v1 sha256:";

export type SignatureCheck =
  | { state: "unsigned" }
  | { state: "verified"; keyId: string }
  | { state: "unknown_key"; keyId: string }
  | { state: "invalid"; keyId: string | null; reason: string };

// ---- canonical form --------------------------------------------------------------------------

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

interface Parts {
  header: Record<string, unknown>;
  metadata: Record<string, unknown>;
  data: Uint8Array;
}

function parts(bytes: Uint8Array, maxBytes: number): Parts {
  const { header, dataStart } = readHeader(bytes, maxBytes);
  const metadata = header["__metadata__"];
  if (!isPlainObject(metadata)) {
    throw new SktError("invalid_adapter", "bad_metadata", "The header has no __metadata__ object to carry a signature.", {
      field: "__metadata__",
    });
  }
  return { header, metadata, data: bytes.subarray(dataStart) };
}

function withoutSignature(p: Parts): Record<string, unknown> {
  const metadata = { ...p.metadata };
  delete metadata[SIGNATURE_FIELD];
  delete metadata[KEY_ID_FIELD];
  return { ...p.header, __metadata__: metadata };
}

function digestOf(header: Record<string, unknown>, data: Uint8Array): string {
  const c = Buffer.from(canonicalJson(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(c.length));
  return createHash("sha256").update(len).update(c).update(data).digest("hex");
}

/** The digest a signature covers (hex), for a file signed or not. */
export function signingDigest(bytes: Uint8Array, maxBytes = DEFAULT_MAX_BYTES): string {
  const p = parts(bytes, maxBytes);
  return digestOf(withoutSignature(p), p.data);
}

// ---- keys --------------------------------------------------------------------------------------

export function keyIdOf(publicKey: KeyObject): string {
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url");
  return createHash("sha256").update(raw).digest("hex").slice(0, 16);
}

function ed25519(key: KeyObject, where: string): KeyObject {
  if (key.asymmetricKeyType !== "ed25519") {
    throw new SktError("bad_request", "invalid_key", `${where}: not an Ed25519 key (got ${key.asymmetricKeyType ?? key.type})`);
  }
  return key;
}

/** Public keys by key id. */
export class TrustedKeys {
  private constructor(private readonly byId: ReadonlyMap<string, KeyObject>) {}

  static of(keys: KeyObject[]): TrustedKeys {
    return new TrustedKeys(new Map(keys.map((k) => [keyIdOf(ed25519(k, "trusted key")), k])));
  }

  /**
   * `SKT_TRUSTED_KEYS`: comma-separated PEM files and folders (every `*.pem` directly inside).
   * Throws `invalid_config` naming the file that is unreadable or not an Ed25519 public key.
   */
  static load(spec: string | undefined): TrustedKeys {
    const keys: KeyObject[] = [];
    for (const entry of (spec ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
      let files: string[];
      try {
        files = statSync(entry).isDirectory()
          ? readdirSync(entry).filter((n) => n.endsWith(".pem")).sort().map((n) => path.join(entry, n))
          : [entry];
      } catch (e) {
        throw config(`SKT_TRUSTED_KEYS: cannot read ${entry}: ${(e as Error).message}`);
      }
      for (const file of files) {
        try {
          keys.push(ed25519(createPublicKey(readFileSync(file, "utf8")), file));
        } catch (e) {
          throw config(`SKT_TRUSTED_KEYS: ${file} is not an Ed25519 public key in PEM form: ${(e as Error).message}`);
        }
      }
    }
    return TrustedKeys.of(keys);
  }

  get size(): number {
    return this.byId.size;
  }

  get ids(): string[] {
    return [...this.byId.keys()].sort();
  }

  get(keyId: string): KeyObject | undefined {
    return this.byId.get(keyId);
  }
}

function config(message: string): SktError {
  return new SktError("bad_request", "invalid_config", message);
}

// ---- sign and verify ---------------------------------------------------------------------------

/** The file with `signature` and `signature_key_id` set in its metadata (any old ones replaced). */
export function signAdapter(bytes: Uint8Array, privateKey: KeyObject, maxBytes = DEFAULT_MAX_BYTES): Uint8Array {
  ed25519(privateKey, "signing key");
  const p = parts(bytes, maxBytes);
  const unsigned = withoutSignature(p);
  const digest = digestOf(unsigned, p.data);
  const signature = edSign(null, Buffer.from(SIGNED_PREFIX + digest, "utf8"), privateKey).toString("base64");
  const keyId = keyIdOf(createPublicKey(privateKey));
  const meta = unsigned["__metadata__"] as Record<string, unknown>;
  const header = { ...unsigned, __metadata__: { ...meta, [SIGNATURE_FIELD]: signature, [KEY_ID_FIELD]: keyId } };
  return withHeader(header, p.data);
}

/**
 * The file stored under another task: `__metadata__.task` replaced and any signature removed (it
 * covered the old task name, so it could never verify again). Tensor data and offsets stay.
 */
export function renameAdapter(
  bytes: Uint8Array,
  task: string,
  maxBytes = DEFAULT_MAX_BYTES,
): { bytes: Uint8Array; signatureDropped: boolean } {
  const p = parts(bytes, maxBytes);
  const unsigned = withoutSignature(p);
  const meta = unsigned["__metadata__"] as Record<string, unknown>;
  const signatureDropped = SIGNATURE_FIELD in p.metadata || KEY_ID_FIELD in p.metadata;
  return { bytes: withHeader({ ...unsigned, __metadata__: { ...meta, task } }, p.data), signatureDropped };
}

export function checkAdapterSignature(bytes: Uint8Array, keys: TrustedKeys, maxBytes = DEFAULT_MAX_BYTES): SignatureCheck {
  const p = parts(bytes, maxBytes);
  const sig = p.metadata[SIGNATURE_FIELD];
  const keyId = p.metadata[KEY_ID_FIELD];
  if (sig === undefined && keyId === undefined) return { state: "unsigned" };
  if (typeof keyId !== "string" || !/^[0-9a-f]{16}$/.test(keyId)) {
    return { state: "invalid", keyId: null, reason: `${KEY_ID_FIELD} must be 16 lowercase hex digits next to ${SIGNATURE_FIELD}` };
  }
  if (typeof sig !== "string" || !/^[A-Za-z0-9+/]{86}==$/.test(sig)) {
    return { state: "invalid", keyId, reason: `${SIGNATURE_FIELD} must be a base64 Ed25519 signature (88 characters) next to ${KEY_ID_FIELD}` };
  }
  const key = keys.get(keyId);
  if (!key) return { state: "unknown_key", keyId };
  const signed = Buffer.from(SIGNED_PREFIX + digestOf(withoutSignature(p), p.data), "utf8");
  return edVerify(null, signed, key, Buffer.from(sig, "base64"))
    ? { state: "verified", keyId }
    : { state: "invalid", keyId, reason: "the signature does not match the file's contents (changed after signing?)" };
}

export interface SignaturePolicy {
  keys: TrustedKeys;
  /** Refuse unsigned files and files signed by keys not in `keys`. */
  required: boolean;
}

/**
 * Apply the policy: throws `invalid_adapter` (422) with `signature_required`, `unknown_signing_key`
 * or `bad_signature`. A signature that is present but wrong is refused even when not required.
 */
export function enforceSignaturePolicy(bytes: Uint8Array, policy: SignaturePolicy, maxBytes = DEFAULT_MAX_BYTES): SignatureCheck {
  const check = checkAdapterSignature(bytes, policy.keys, maxBytes);
  const refuse = (code: string, message: string, details?: Record<string, unknown>): never => {
    throw new SktError("invalid_adapter", code, message, details);
  };
  if (check.state === "invalid") refuse("bad_signature", `The adapter's signature is not valid: ${check.reason}. Sign the file again.`, { keyId: check.keyId });
  if (policy.required && check.state === "unsigned") {
    refuse("signature_required", "This server only accepts signed adapters (SKT_REQUIRE_SIGNATURE=true). Sign the file with a trusted key first.");
  }
  if (policy.required && check.state === "unknown_key") {
    refuse("unknown_signing_key", `The adapter is signed by key ${check.keyId}, which is not among this server's trusted keys (SKT_TRUSTED_KEYS).`, {
      keyId: check.keyId,
      trusted: policy.keys.ids,
    });
  }
  return check;
}
