/**
 * Nodes the WebGPU session keeps on the CPU on purpose.
 *
 * WGSL's `sin`/`cos` are only required to be accurate to an absolute 2^-11 on [-π, π] (and are
 * unbounded outside it); onnxruntime's WebGPU Sin/Cos kernels use them. The timing signal takes sin
 * and cos of position × frequency (up to ~127 rad), and on SwiftShader they differ from the CPU's by
 * 1.9e-4, which the two transformer layers amplify to ~8e-3 on last_hidden_state. Every other op, run
 * alone on identical inputs, agrees to float rounding (scripts/webgpu-error-trace.ts, docs/webgpu.md).
 * The timing signal is a [seq, 256] tensor computed once per batch, so running its Sin/Cos on the
 * CPU costs one small upload and brings the providers within ~1e-4 of each other.
 */
import { readFile } from "node:fs/promises";
import onnxProto from "onnx-proto";

const CPU_OPS = new Set(["Sin", "Cos"]);

/** Names of the nodes in the ONNX file at `file` that should run on the CPU provider. */
export async function cpuPinnedNodeNames(file: string): Promise<string[]> {
  const model = onnxProto.onnx.ModelProto.decode(await readFile(file));
  const names = (model.graph?.node ?? []).filter((n) => CPU_OPS.has(n.opType ?? "")).map((n) => n.name ?? "");
  if (names.some((n) => n === ""))
    throw new Error(`${file}: a Sin/Cos node has no name, so it cannot be kept on the CPU`);
  return names;
}
