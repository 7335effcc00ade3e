/**
 * Signed uploads through the real engine and app: with SKT_REQUIRE_SIGNATURE=true only files signed
 * by a trusted key are stored, and the version list shows the key id. Also: the shipped adapters
 * verify against the project's public key.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TrustedKeys, checkAdapterSignature, keyIdOf, signAdapter } from "../../src/adapters/signature.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { adminHeaders, expectErrorBody, listTree, startEngineRig, type EngineRig } from "../reliability/helpers.js";

const trusted = generateKeyPairSync("ed25519");
const stranger = generateKeyPairSync("ed25519");
const keyDir = mkdtempSync(path.join(os.tmpdir(), "skt-trusted-"));
writeFileSync(path.join(keyDir, "ops.pem"), trusted.publicKey.export({ type: "spki", format: "pem" }));

let rig: EngineRig;
beforeAll(async () => {
  rig = await startEngineRig({ trustedKeys: keyDir, requireSignature: true });
});
afterAll(async () => {
  await rig?.close();
});

const put = (task: string, body: Uint8Array) =>
  rig.app.request(`/admin/adapters/${task}`, {
    method: "PUT",
    headers: { ...adminHeaders, "content-type": "application/octet-stream" },
    body: body as Uint8Array<ArrayBuffer>,
  });

describe("SKT_REQUIRE_SIGNATURE=true", () => {
  it("refuses unsigned, unknown-key and tampered files with 422, storing nothing", async () => {
    const bytes = servableAdapterBytes(rig.engine.assets, { task: "signed", seed: 3 });
    const bySigner = signAdapter(bytes, trusted.privateKey);
    const tampered = new Uint8Array(bySigner);
    tampered[tampered.length - 3] ^= 0x40;
    await rig.app.request("/admin/adapters"); // a refused request: the audit log (and its folder) now exist
    const before = await listTree(rig.root);
    for (const [body, code] of [
      [bytes, "signature_required"],
      [signAdapter(bytes, stranger.privateKey), "unknown_signing_key"],
      [tampered, "bad_signature"],
    ] as const) {
      const res = await put("signed", body);
      expect(res.status, code).toBe(422);
      expect((await expectErrorBody(res)).code).toBe(code);
    }
    expect(await listTree(rig.root)).toEqual(before);
    expect(rig.engine.registry.currentVersion("signed")).toBeNull();
  });

  it("stores a file signed by a trusted key and lists its key id; the audit log has its sha256", async () => {
    const signed = signAdapter(
      servableAdapterBytes(rig.engine.assets, { task: "signed", seed: 4 }),
      trusted.privateKey,
    );
    const res = await put("signed", signed);
    expect(res.status).toBe(201);
    const details = (await (await rig.app.request("/admin/adapters/signed", { headers: adminHeaders })).json()) as {
      versions: { version: number; metadata: Record<string, unknown> }[];
    };
    expect(details.versions.map((v) => v.metadata.signature_key_id)).toEqual([keyIdOf(trusted.publicKey)]);
    const classify = await rig.app.request("/classify?task=signed", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"text":"signed and served"}',
    });
    expect(classify.status).toBe(200);
  });
});

describe("shipped adapters", () => {
  it("every adapters/*/v*.safetensors verifies against keys/project.pub.pem", () => {
    const keys = TrustedKeys.load(path.resolve("keys/project.pub.pem"));
    const files = readdirSync("adapters", { recursive: true, encoding: "utf8" }).filter((f) =>
      f.endsWith(".safetensors"),
    );
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      expect(checkAdapterSignature(new Uint8Array(readFileSync(path.join("adapters", f))), keys), f).toEqual({
        state: "verified",
        keyId: keys.ids[0],
      });
    }
  });
});
