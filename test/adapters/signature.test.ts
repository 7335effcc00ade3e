import { createHash, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { decodeAdapter, encodeAdapter, peekMetadata } from "../../src/adapters/format.js";
import {
  TrustedKeys,
  checkAdapterSignature,
  enforceSignaturePolicy,
  keyIdOf,
  signAdapter,
  signingDigest,
} from "../../src/adapters/signature.js";
import { signCommand } from "../../src/adapters/sign-command.js";
import { USE_LITE_DIMS } from "../../src/backbone/dims.js";
import { TEST_FINGERPRINT, makeAdapter, rawFile, splitFile } from "../helpers/random-adapter.js";

const keyPair = () => generateKeyPairSync("ed25519");
const A = keyPair();
const B = keyPair();
const unsigned = encodeAdapter(makeAdapter({ labels: ["neg", "pos"] }));
const decodeOpts = { dims: USE_LITE_DIMS, fingerprint: TEST_FINGERPRINT };

/** Independent key id: the raw key is the last 32 bytes of the SPKI DER encoding. */
function referenceKeyId(pub: KeyObject): string {
  const der = pub.export({ type: "spki", format: "der" });
  return createHash("sha256").update(der.subarray(der.length - 32)).digest("hex").slice(0, 16);
}

/** Independent digest for a file our writer produced unsigned: its header bytes minus padding. */
function referenceDigest(file: Uint8Array): string {
  const n = Number(Buffer.from(file).readBigUInt64LE(0));
  const header = Buffer.from(file.subarray(8, 8 + n)).toString("utf8").replace(/ +$/, "");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(header)));
  return createHash("sha256").update(len).update(header).update(file.subarray(8 + n)).digest("hex");
}

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[at] ^= 1;
  return out;
}

describe("signAdapter / checkAdapterSignature", () => {
  const keys = TrustedKeys.of([A.publicKey]);
  const signed = signAdapter(unsigned, A.privateKey);

  it("signs the canonical unsigned form; the digest matches an independent computation", () => {
    expect(signingDigest(unsigned)).toBe(referenceDigest(unsigned));
    expect(signingDigest(signed)).toBe(referenceDigest(unsigned)); // the signature fields are left out
    expect(keyIdOf(A.publicKey)).toBe(referenceKeyId(A.publicKey));
    expect(checkAdapterSignature(signed, keys)).toEqual({ state: "verified", keyId: referenceKeyId(A.publicKey) });
  });

  it("changes only the header: the same adapter decodes, and the metadata names the key", () => {
    const a = decodeAdapter(unsigned, decodeOpts);
    const b = decodeAdapter(signed, decodeOpts);
    expect(b.tensors).toEqual(a.tensors);
    expect({ ...b.metadata, signatureKeyId: undefined }).toEqual({ ...a.metadata, signatureKeyId: undefined });
    expect(peekMetadata(signed).signatureKeyId).toBe(keyIdOf(A.publicKey));
    expect(peekMetadata(unsigned).signatureKeyId).toBeUndefined();
    expect(Buffer.from(signed.subarray(signed.length - 64)).equals(Buffer.from(unsigned.subarray(unsigned.length - 64)))).toBe(true);
    expect(signed.length % 8).toBe(unsigned.length % 8);
  });

  it("is refused when anything signed changes: a data byte, a label, the signature", () => {
    const { header, data } = splitFile(signed);
    expect(checkAdapterSignature(flip(signed, signed.length - 5), keys)).toMatchObject({ state: "invalid" });
    const relabelled = structuredClone(header);
    relabelled.__metadata__.labels = '["pos","neg"]';
    expect(checkAdapterSignature(rawFile(relabelled, data), keys)).toMatchObject({ state: "invalid", reason: expect.stringMatching(/does not match/) });
    const otherSig = splitFile(signAdapter(encodeAdapter(makeAdapter({}, USE_LITE_DIMS, 7)), A.privateKey)).header.__metadata__.signature;
    const swapped = structuredClone(header);
    swapped.__metadata__.signature = otherSig;
    expect(checkAdapterSignature(rawFile(swapped, data), keys)).toMatchObject({ state: "invalid" });
  });

  it("verifies whatever the header's key order and padding (the canonical form is what is signed)", () => {
    const { header, data } = splitFile(signed);
    const reordered = Object.fromEntries(Object.entries(header).reverse());
    reordered.__metadata__ = Object.fromEntries(Object.entries(header.__metadata__).reverse());
    const text = JSON.stringify(reordered, null, 1);
    const bytes = new Uint8Array(8 + text.length + data.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
    bytes.set(Buffer.from(text), 8);
    bytes.set(data, 8 + text.length);
    expect(checkAdapterSignature(bytes, keys)).toMatchObject({ state: "verified" });
  });

  it("tells unsigned, unknown-key and malformed signatures apart", () => {
    expect(checkAdapterSignature(unsigned, keys)).toEqual({ state: "unsigned" });
    expect(checkAdapterSignature(signAdapter(unsigned, B.privateKey), keys)).toEqual({ state: "unknown_key", keyId: keyIdOf(B.publicKey) });
    const { header, data } = splitFile(signed);
    const onlyId = structuredClone(header);
    delete onlyId.__metadata__.signature;
    expect(checkAdapterSignature(rawFile(onlyId, data), keys)).toMatchObject({ state: "invalid", reason: expect.stringMatching(/base64/) });
    const badId = structuredClone(header);
    badId.__metadata__.signature_key_id = "XYZ";
    expect(checkAdapterSignature(rawFile(badId, data), keys)).toMatchObject({ state: "invalid", keyId: null });
  });

  it("re-signing replaces the signature (one key id, the new one)", () => {
    const twice = signAdapter(signed, B.privateKey);
    expect(splitFile(twice).header.__metadata__.signature_key_id).toBe(keyIdOf(B.publicKey));
    expect(checkAdapterSignature(twice, TrustedKeys.of([B.publicKey]))).toMatchObject({ state: "verified" });
    expect(signingDigest(twice)).toBe(signingDigest(unsigned));
  });

  it("refuses to sign with a key that is not Ed25519", () => {
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
    expect(() => signAdapter(unsigned, ec.privateKey)).toThrow(/not an Ed25519 key/);
  });
});

describe("enforceSignaturePolicy", () => {
  const keys = TrustedKeys.of([A.publicKey]);
  const byA = signAdapter(unsigned, A.privateKey);
  const byB = signAdapter(unsigned, B.privateKey);
  const tampered = flip(byA, byA.length - 1);
  const code = (bytes: Uint8Array, required: boolean) => {
    try {
      enforceSignaturePolicy(bytes, { keys, required });
      return "ok";
    } catch (e) {
      expect(e).toMatchObject({ kind: "invalid_adapter" });
      return (e as { code: string }).code;
    }
  };

  it.each([
    ["unsigned", unsigned, "signature_required", "ok"],
    ["signed by an unknown key", byB, "unknown_signing_key", "ok"],
    ["signed by a trusted key", byA, "ok", "ok"],
    ["tampered after signing", tampered, "bad_signature", "bad_signature"],
  ])("%s: required → %s, optional → %s", (_what, bytes, whenRequired, whenOptional) => {
    expect(code(bytes, true)).toBe(whenRequired);
    expect(code(bytes, false)).toBe(whenOptional);
  });
});

describe("TrustedKeys.load", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "skt-keys-"));
  const pem = (k: KeyObject) => k.export({ type: "spki", format: "pem" }) as string;
  mkdirSync(path.join(dir, "folder"));
  writeFileSync(path.join(dir, "folder", "a.pem"), pem(A.publicKey));
  writeFileSync(path.join(dir, "folder", "b.pem"), pem(B.publicKey));
  writeFileSync(path.join(dir, "folder", "notes.txt"), "ignored");
  writeFileSync(path.join(dir, "a.pem"), pem(A.publicKey));
  writeFileSync(path.join(dir, "ec.pem"), pem(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey));

  it("reads files and folders (every *.pem), by key id", () => {
    expect(TrustedKeys.load(`${path.join(dir, "folder")}`).ids).toEqual([keyIdOf(A.publicKey), keyIdOf(B.publicKey)].sort());
    expect(TrustedKeys.load(` ${path.join(dir, "a.pem")} ,`).ids).toEqual([keyIdOf(A.publicKey)]);
    expect(TrustedKeys.load(undefined).size).toBe(0);
  });

  it("names the file that is not an Ed25519 public key, or cannot be read", () => {
    expect(() => TrustedKeys.load(path.join(dir, "ec.pem"))).toThrow(/SKT_TRUSTED_KEYS: .*ec\.pem is not an Ed25519 public key/);
    expect(() => TrustedKeys.load(path.join(dir, "missing.pem"))).toThrow(/SKT_TRUSTED_KEYS: cannot read .*missing\.pem/);
  });
});

describe("sign command", () => {
  it("signs files in place and verifies them against a trusted key folder", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "skt-sign-"));
    const file = path.join(dir, "v000001.safetensors");
    writeFileSync(file, unsigned);
    writeFileSync(path.join(dir, "key.pem"), A.privateKey.export({ type: "pkcs8", format: "pem" }));
    mkdirSync(path.join(dir, "trusted"));
    writeFileSync(path.join(dir, "trusted", "a.pem"), A.publicKey.export({ type: "spki", format: "pem" }));
    const lines: string[] = [];
    await signCommand(["--key", path.join(dir, "key.pem"), file], (l) => lines.push(l));
    expect(lines[0]).toContain(keyIdOf(A.publicKey));
    expect(checkAdapterSignature(new Uint8Array(readFileSync(file)), TrustedKeys.of([A.publicKey]))).toMatchObject({ state: "verified" });
    await signCommand(["--verify", "--trusted", path.join(dir, "trusted"), file], (l) => lines.push(l));
    expect(lines[1]).toMatch(/verified/);
    await expect(signCommand(["--verify", "--trusted", path.join(dir, "trusted"), file], () => undefined)).resolves.toBeUndefined();
    writeFileSync(file, unsigned);
    await expect(signCommand(["--verify", "--trusted", path.join(dir, "trusted"), file], () => undefined)).rejects.toThrow(/not signed by a trusted key/);
    await expect(signCommand([file])).rejects.toThrow(/--key is required/);
  });
});
