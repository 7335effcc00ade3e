/**
 * Test helpers: well-formed adapters with seeded random weights, and raw safetensors assembly for
 * building malformed files the real writer refuses to produce.
 */
import { USE_LITE_DIMS, type BackboneDims } from "../../src/backbone/dims.js";
import type { AdapterFile, AdapterMetadata, AdapterTensor } from "../../src/adapters/format.js";
import { expectedShapes, numel, type ProblemType, type Variant } from "../../src/adapters/spec.js";
import { seededRandom } from "../../src/random.js";

export const TEST_FINGERPRINT = "0123456789abcdef".repeat(4);

export interface AdapterOptions {
  variant?: Variant;
  pooling?: boolean;
  problemType?: ProblemType;
  promptLength?: number;
  labels?: string[];
  maxLength?: number;
  training?: Record<string, unknown>;
  textPair?: boolean;
}

const DEFAULT_LABELS: Record<ProblemType, string[]> = {
  single_label_classification: ["negative", "positive"],
  multi_label_classification: ["sports", "politics", "tech"],
  regression: ["score"],
};

export function makeMetadata(o: AdapterOptions = {}): AdapterMetadata {
  const problemType = o.problemType ?? "single_label_classification";
  const meta: AdapterMetadata = {
    task: "sst2",
    variant: o.variant ?? "prompt",
    pooling: o.pooling ?? true,
    promptText: "classify the text as positive or negative, text:",
    promptLength: o.promptLength ?? 4,
    labels: o.labels ?? DEFAULT_LABELS[problemType],
    problemType,
    backbone: "use-lite",
    backboneFingerprint: TEST_FINGERPRINT,
    maxLength: o.maxLength ?? 64,
    textPair: o.textPair ?? false,
  };
  if (o.training) meta.training = o.training;
  return meta;
}

/** A valid adapter whose weights come from a seeded generator (same seed, same weights). */
export function makeAdapter(o: AdapterOptions = {}, dims: BackboneDims = USE_LITE_DIMS, seed = 1): AdapterFile {
  const metadata = makeMetadata(o);
  const next = seededRandom(seed);
  const tensors: Record<string, AdapterTensor> = {};
  for (const [name, shape] of Object.entries(expectedShapes(metadata, dims))) {
    const data = new Float32Array(numel(shape));
    for (let i = 0; i < data.length; i++) data[i] = next() * 2 - 1;
    tensors[name] = { shape, data };
  }
  return { metadata, tensors };
}

/** Split a safetensors file into its parsed header and data buffer (no validation). */
export function splitFile(bytes: Uint8Array): { header: Record<string, any>; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { header, data: bytes.slice(8 + n) };
}

/** Assemble a safetensors file from any header (object or raw text) and data, without checks. */
export function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  return rawFileBytes(new TextEncoder().encode(text), data);
}

export function rawFileBytes(headerBytes: Uint8Array, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

/** Decode → edit the header → re-assemble; the edit may break anything. */
export function mutateHeader(
  bytes: Uint8Array,
  edit: (header: Record<string, any>) => void,
  data?: (data: Uint8Array) => Uint8Array,
): Uint8Array {
  const parts = splitFile(bytes);
  edit(parts.header);
  return rawFile(parts.header, data ? data(parts.data) : parts.data);
}

/** The file with every value of tensor `name` replaced by `value(i)` (no checks: for out-of-range values). */
export function setTensorValues(bytes: Uint8Array, name: string, value: (i: number) => number): Uint8Array {
  const { header, data } = splitFile(bytes);
  const [begin, end] = header[name].data_offsets as [number, number];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let at = begin, i = 0; at < end; at += 4, i++) view.setFloat32(at, value(i), true);
  return rawFile(header, data);
}
