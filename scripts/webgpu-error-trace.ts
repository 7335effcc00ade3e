/**
 * Where does WebGPU differ from the CPU provider? Builds USE-lite with the project's graph builder,
 * makes every float value a graph output, runs the same token batch on both providers and prints,
 * op by op, the largest |WebGPU − CPU| of its output next to the largest difference already in its
 * float inputs: the ops whose output difference is much larger than their inputs' introduce the
 * error. Then runs the worst op type alone (single-op graph, identical inputs) on both providers.
 *
 *   npx tsx scripts/webgpu-error-trace.ts            (uses scripts/lib/webgpu-env.ts to find Vulkan)
 *
 * Exposing intermediates stops onnxruntime from fusing across them, so this traces the unfused
 * graph; the script first prints the end outputs of the normal (fused) model, with the timing
 * signal's Sin/Cos on the GPU and then on the CPU as the server places them (webgpu-placement.ts).
 * Findings are written up in docs/webgpu.md.
 */
import ort from "onnxruntime-node";
import { loadBackboneAssets, tokenBatch } from "../src/backbone/backbone.js";
import { executionProviders, type Device } from "../src/backbone/device.js";
import { Graph, type Value } from "../src/backbone/graph/graph.js";
import { toOnnxBytes } from "../src/backbone/graph/onnx.js";
import { buildUseLiteNetwork } from "../src/backbone/use-lite/network.js";
import { readUseLitePackage } from "../src/backbone/use-lite/package-source.js";
import { mapUseLiteWeights } from "../src/backbone/use-lite/weights.js";
import { prepareWebGpuEnv } from "./lib/webgpu-env.js";

const SENTENCES = [
  "the film is a charming, funny and moving story",
  "a tedious mess that never finds its footing",
  "it is what it is",
  "an utterly forgettable sequel with one good scene and a great many bad ones , sadly",
];

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

async function session(bytes: Uint8Array, device: Device, cpuNodes: string[] = []): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    executionProviders: executionProviders(device, cpuNodes),
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
  });
}

async function runBoth(
  bytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
  names: string[],
  gpuCpuNodes: string[] = [],
) {
  const [cpu, gpu] = await Promise.all([session(bytes, "cpu"), session(bytes, "webgpu", gpuCpuNodes)]);
  const a = await cpu.run(feeds, names);
  const b = await gpu.run(feeds, names);
  return { cpu: a, gpu: b };
}

async function main(): Promise<void> {
  const env = prepareWebGpuEnv();
  if (!env.available) throw new Error(env.reason);
  const assets = await loadBackboneAssets("models");
  const ids = SENTENCES.map((s) => assets.tokenizer.encode(s, 126).ids);
  const batch = tokenBatch(assets.embeddings, assets.dims.embedDim, ids, []);
  const feeds = {
    inputs_embeds: new ort.Tensor("float32", batch.inputsEmbeds, [batch.batch, batch.seq, assets.dims.embedDim]),
    attention_mask: new ort.Tensor("int64", batch.attentionMask, [batch.batch, batch.seq]),
  };
  console.log(`batch ${batch.batch} × ${batch.seq} tokens`);

  const weights = mapUseLiteWeights((await readUseLitePackage()).weights);

  // 1. The model as served (fused).
  const served = buildUseLiteNetwork(weights).graph;
  const ends = ["last_hidden_state", "pooled", "sentence_embedding"];
  // Node names as toOnnxBytes writes them (`${type}_${index}`), as webgpu-placement.ts finds them in the file.
  const sinCos = served.ops.flatMap((op, i) => (op.type === "Sin" || op.type === "Cos" ? [`${op.type}_${i}`] : []));
  for (const [label, pinned] of [
    ["all on WebGPU", []],
    [`${sinCos.join(", ")} on the CPU (as served)`, sinCos],
  ] as const) {
    const s = await runBoth(toOnnxBytes(served), feeds, ends, [...pinned]);
    for (const n of ends) {
      const a = s.cpu[n].data as Float32Array;
      console.log(
        `model, ${label}: ${n} max|Δ| ${maxAbsDiff(a, s.gpu[n].data as Float32Array).toExponential(2)}, max|cpu| ${maxAbs(a).toFixed(2)}`,
      );
    }
  }

  // 2. Every float intermediate as an output.
  const traced = buildUseLiteNetwork(weights).graph;
  const outputs = new Set(traced.outputs.map((v) => v.name));
  for (const op of traced.ops)
    for (const o of op.outputs)
      if (o.dtype === "float32" && !outputs.has(o.name)) {
        traced.outputs.push(o);
        outputs.add(o.name);
      }
  const names = traced.outputs.map((v) => v.name);
  const t = await runBoth(toOnnxBytes(traced), feeds, names);
  const diff = new Map<string, number>();
  for (const n of names) diff.set(n, maxAbsDiff(t.cpu[n].data as Float32Array, t.gpu[n].data as Float32Array));
  const rows: { i: number; type: string; out: string; d: number; din: number; mag: number }[] = [];
  traced.ops.forEach((op, i) => {
    const o = op.outputs.find((v) => v.dtype === "float32");
    if (!o) return;
    const din = Math.max(0, ...op.inputs.map((v: Value) => diff.get(v.name) ?? 0));
    rows.push({
      i,
      type: op.type,
      out: o.name,
      d: diff.get(o.name)!,
      din,
      mag: maxAbs(t.cpu[o.name].data as Float32Array),
    });
  });
  console.log("\nop#  type           max|Δ out|  max|Δ in|  max|out|  output");
  for (const r of rows)
    console.log(
      `${String(r.i).padStart(3)}  ${r.type.padEnd(13)}  ${r.d.toExponential(2).padStart(9)}  ${r.din.toExponential(2).padStart(9)}  ${r.mag.toFixed(2).padStart(8)}  ${r.out}`,
    );
  const introduced = rows
    .map((r) => ({ ...r, jump: r.d - r.din }))
    .sort((a, b) => b.jump - a.jump)
    .slice(0, 8);
  console.log("\nlargest increases (max|Δ out| − max|Δ in|):");
  for (const r of introduced)
    console.log(`  op ${r.i} ${r.type} (${r.out}): +${r.jump.toExponential(2)}  (|out| up to ${r.mag.toFixed(2)})`);

  // 3. Each MatMul alone, on the CPU provider's own inputs, so no upstream difference enters.
  console.log("\nsingle-op graphs (same inputs on both providers):");
  for (const r of rows.filter((x) =>
    ["MatMul", "Softmax", "ReduceMean", "Sin", "Cos", "Div", "Sqrt"].includes(x.type),
  )) {
    const op = traced.ops[r.i];
    const g = new Graph("float32");
    const single: Record<string, ort.Tensor> = {};
    const ins = op.inputs.map((v, k) => {
      const src = (t.cpu[v.name] ?? traced.initializers.find((x) => x.value.name === v.name)) as
        ort.Tensor | { value: Value; data: Float32Array } | undefined;
      if (!src) return null;
      const data = "value" in src ? src.data : (src.data as Float32Array);
      const dims = "value" in src ? (src.value.shape as number[]) : (src.dims as number[]);
      const input = g.input(`x${k}`, "float32", dims);
      single[`x${k}`] = new ort.Tensor("float32", data, dims);
      return input;
    });
    if (ins.some((x) => x === null)) continue;
    g.output(
      "__y",
      g.record(op.type, ins as Value[], { ...op.attrs }, [
        { name: "__y", dtype: "float32", shape: op.outputs[0].shape },
      ])[0],
    );
    const one = await runBoth(toOnnxBytes(g), single, ["__y"]);
    const a = one.cpu.__y.data as Float32Array;
    console.log(
      `  op ${r.i} ${r.type.padEnd(10)} alone: max|Δ| ${maxAbsDiff(a, one.gpu.__y.data as Float32Array).toExponential(2)}  (|out| up to ${maxAbs(a).toFixed(2)}; inputs ${ins.map((v) => `[${v!.shape}]`).join(" ")})`,
    );
  }
}

await main();
