/**
 * SKT_ORT_SPINNING=false (onnxruntime's session.intra_op.allow_spinning=0) changes only how idle
 * pool threads wait: a runner opened with it accepts the setting and gives the same outputs, bit for
 * bit, as one with spinning on, on the padded and the packed graphs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackboneRunner, loadBackboneAssets, tokenBatch, type BackboneAssets } from "../../src/backbone/backbone.js";
import type { PackedSetting } from "../../src/backbone/packing.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { readSst2 } from "../../scripts/lib/sst2.js";

describe("onnxruntime intra-op spinning off", () => {
  let assets: BackboneAssets;
  const runners: BackboneRunner[] = [];
  const open = async (packed: PackedSetting, spinning: boolean) => {
    const r = await BackboneRunner.create(MODELS_DIR, { threads: 2, packed, spinning });
    runners.push(r);
    return r;
  };
  beforeAll(async () => {
    assets = await loadBackboneAssets(MODELS_DIR);
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.release()));
  });

  it.each(["off", "auto"] as const)("gives the spinning runner's exact outputs (SKT_PACKED=%s)", async (packed) => {
    const [spinning, sleeping] = [await open(packed, true), await open(packed, false)];
    expect(sleeping.layout).toBe(spinning.layout);
    const ids = readSst2("dev")
      .slice(0, 12)
      .map((e) => assets.tokenizer.encode(e.sentence, 64).ids);
    const D = assets.dims.embedDim;
    const batch = () => tokenBatch(assets.embeddings, D, ids, ["pooled", "last_hidden_state"]);
    const a = await spinning.run(batch());
    const b = await sleeping.run(batch());
    expect(b.pooled!.length).toBe(ids.length * assets.dims.hiddenDim);
    expect(Buffer.from(b.pooled!.buffer).equals(Buffer.from(a.pooled!.buffer))).toBe(true);
    expect(Buffer.from(b.last_hidden_state!.buffer).equals(Buffer.from(a.last_hidden_state!.buffer))).toBe(true);
  });
});
