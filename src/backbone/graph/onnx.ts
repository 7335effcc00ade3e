/**
 * Serialises a recorded `Graph` to ONNX `ModelProto` bytes through the onnx-proto (protobufjs)
 * classes: either with every initializer inline (`toOnnxBytes`), or with the large ones written
 * as ONNX external data (`writeOnnxWithExternalData`) — protobuf caps a message at 2 GiB, and
 * external data also lets several graphs share one weight file on disk.
 */
import { createHash } from "node:crypto";
import { open, writeFile, type FileHandle } from "node:fs/promises";
import path from "node:path";
import onnxProto from "onnx-proto";
import { onnxTypeCode, type AttrValue, type Graph, type Initializer, type TensorData, type Value } from "./graph.js";

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

function inlineTensor({ value, data }: Initializer): onnxProto.onnx.ITensorProto {
  return {
    name: value.name,
    dataType: onnxTypeCode(value.dtype),
    dims: value.shape as number[],
    rawData: rawBytes(data),
  };
}

function modelProto(
  graph: Graph,
  name: string,
  initializers: onnxProto.onnx.ITensorProto[],
): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.create({
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
      initializer: initializers,
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
}

export function toOnnxBytes(graph: Graph, name = "graph"): Uint8Array {
  return onnx.ModelProto.encode(modelProto(graph, name, graph.initializers.map(inlineTensor))).finish();
}

/** Tensors smaller than this stay inline (onnx's own `convert_model_to_external_data` default). */
export const EXTERNAL_DATA_MIN_BYTES = 1024;
/**
 * Every external tensor starts at a multiple of this (a page), so onnxruntime can map it from the
 * file instead of copying it (its own writer aligns the same way).
 */
export const EXTERNAL_DATA_ALIGNMENT = 4096;

/**
 * One external-data file that any number of graphs write their large initializers into. A tensor
 * whose bytes (and dtype and shape) were already written is not written again: the plain and the
 * prefix graph of a backbone hold the same weights, and both reference the one copy.
 */
export class ExternalDataFile {
  private size = 0;
  private readonly written = new Map<string, { offset: number; length: number }>();
  private readonly hash = createHash("sha256");

  private constructor(
    private readonly handle: FileHandle,
    /** The file's name, which graphs record as `location` (relative to their own folder). */
    readonly location: string,
    readonly minBytes: number,
  ) {}

  /** Creates (truncates) `file`; tensors under `minBytes` stay inline in their graph. */
  static async create(file: string, minBytes = EXTERNAL_DATA_MIN_BYTES): Promise<ExternalDataFile> {
    return new ExternalDataFile(await open(file, "w"), path.basename(file), minBytes);
  }

  /** Bytes written so far (alignment padding included). */
  get bytes(): number {
    return this.size;
  }

  /**
   * The tensor proto of `init`: a reference to its bytes in this file, or inline when it is small or
   * int64 (shapes, axes, indices: onnxruntime's shape inference reads those and refuses external ones).
   */
  async tensor(init: Initializer): Promise<onnxProto.onnx.ITensorProto> {
    const bytes = rawBytes(init.data);
    if (bytes.byteLength < this.minBytes || init.value.dtype === "int64") return inlineTensor(init);
    const key = `${init.value.dtype}:${init.value.shape.join("x")}:${createHash("sha256").update(bytes).digest("hex")}`;
    let place = this.written.get(key);
    if (!place) {
      const offset = Math.ceil(this.size / EXTERNAL_DATA_ALIGNMENT) * EXTERNAL_DATA_ALIGNMENT;
      if (offset > this.size) this.append(new Uint8Array(offset - this.size));
      place = { offset, length: bytes.byteLength };
      this.append(bytes);
      this.written.set(key, place);
    }
    await this.flush();
    return {
      name: init.value.name,
      dataType: onnxTypeCode(init.value.dtype),
      dims: init.value.shape as number[],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: "location", value: this.location },
        { key: "offset", value: String(place.offset) },
        { key: "length", value: String(place.length) },
      ],
    };
  }

  private pending: Uint8Array[] = [];
  private append(bytes: Uint8Array): void {
    this.pending.push(bytes);
    this.hash.update(bytes);
    this.size += bytes.byteLength;
  }
  private async flush(): Promise<void> {
    for (const b of this.pending.splice(0)) await this.handle.write(b);
  }

  /** Closes the file; returns its size and sha256 (for the build manifest). */
  async close(): Promise<{ bytes: number; sha256: string }> {
    await this.flush();
    await this.handle.close();
    return { bytes: this.size, sha256: this.hash.digest("hex") };
  }
}

/**
 * Writes `graph` to `file` with its large initializers in `data` (streamed there one tensor at a
 * time, so the weights are never held a second time as protobuf bytes); returns the graph file's
 * bytes (small: structure and the small constants only).
 */
export async function writeOnnxWithExternalData(
  graph: Graph,
  name: string,
  file: string,
  data: ExternalDataFile,
): Promise<Uint8Array> {
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  for (const init of graph.initializers) initializers.push(await data.tensor(init));
  const bytes = onnx.ModelProto.encode(modelProto(graph, name, initializers)).finish();
  await writeFile(file, bytes);
  return bytes;
}
