/** Serialises a recorded `Graph` to ONNX `ModelProto` bytes through the onnx-proto (protobufjs) classes. */
import onnxProto from "onnx-proto";
import { onnxTypeCode, type AttrValue, type Graph, type TensorData, type Value } from "./graph.js";

const { onnx } = onnxProto;

/** IR 8 / opset 17 is what onnx-proto's schema describes, and onnxruntime 1.x runs it. */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

export const CONTRIB_DOMAIN = "com.microsoft";

function valueInfo(v: Value): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: onnxTypeCode(v.dtype),
        shape: { dim: v.shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function rawBytes(data: TensorData): Uint8Array {
  // ONNX raw_data is little-endian, which is every platform Node runs on here.
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function attribute(name: string, value: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === "number") return { name, type: T.INT, i: value };
  if (typeof value === "string") return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ("float" in value) return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.FLOATS, floats: value.floats };
}

export function toOnnxBytes(graph: Graph, name = "graph"): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    producerName: "sk-tuning-server",
    opsetImport: [
      { domain: "", version: ONNX_OPSET },
      // onnxruntime's contrib ops (the int8 graphs' DynamicQuantizeMatMul) live in their own domain.
      ...(graph.ops.some((op) => op.domain === CONTRIB_DOMAIN) ? [{ domain: CONTRIB_DOMAIN, version: 1 }] : []),
    ],
    graph: {
      name,
      input: graph.inputs.map(valueInfo),
      output: graph.outputs.map(valueInfo),
      initializer: graph.initializers.map(({ value, data }) => ({
        name: value.name,
        dataType: onnxTypeCode(value.dtype),
        dims: value.shape as number[],
        rawData: rawBytes(data),
      })),
      node: graph.ops.map((op, i) => ({
        name: `${op.type}_${i}`,
        opType: op.type,
        ...(op.domain ? { domain: op.domain } : {}),
        input: op.inputs.map((v) => v.name),
        output: op.outputs.map((v) => v.name),
        attribute: Object.entries(op.attrs).map(([k, v]) => attribute(k, v)),
      })),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
