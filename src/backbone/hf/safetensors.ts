/**
 * Reads safetensors files (one `model.safetensors`, or shards listed by `model.safetensors.index.json`)
 * into float32 arrays. Format: u64 little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}}`, then the raw little-endian data.
 * F32, F16 and BF16 are read and widened to float32; a tensor in another dtype is refused by name
 * when the network reads it (buffers it never reads, such as int64 position_ids, are left alone).
 * Only the headers are kept in memory: each tensor is read from its file when asked for, so a
 * multi-GB checkpoint is never held whole next to its float32 copy.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import path from "node:path";
import { modelError } from "./errors.js";
import { float16Value } from "../graph/half.js";

export type StoredDType = "F32" | "F16" | "BF16";
const BYTES: Record<StoredDType, number> = { F32: 4, F16: 2, BF16: 2 };
/** Widths of the other dtypes a checkpoint may carry in tensors the network never reads (e.g. BERT's int64 position_ids buffer). */
const OTHER_BYTES: Record<string, number> = {
  F64: 8,
  I64: 8,
  U64: 8,
  I32: 4,
  U32: 4,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export interface TensorEntry {
  /** As stored; only F32, F16 and BF16 can be read. */
  dtype: string;
  shape: number[];
  /** The file this tensor lives in (a shard's name for sharded checkpoints). */
  file: string;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

interface ParsedFile {
  header: Record<string, HeaderEntry>;
  dataStart: number;
  /** Absolute path of the file. */
  file: string;
}

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";

/** Reads and checks the header of the safetensors file at `full` (shown as `file` in errors). */
async function parseFile(file: string, full: string): Promise<ParsedFile> {
  const handle = await open(full, "r");
  let headerText: Uint8Array;
  let fileSize: number;
  let headerLength: number;
  try {
    fileSize = (await handle.stat()).size;
    if (fileSize < 8) throw modelError("model_file_invalid", `${file}: shorter than a safetensors header`);
    const lengthBytes = new Uint8Array(8);
    await handle.read(lengthBytes, 0, 8, 0);
    headerLength = Number(new DataView(lengthBytes.buffer).getBigUint64(0, true));
    if (headerLength > fileSize - 8)
      throw modelError("model_file_invalid", `${file}: header length ${headerLength} runs past the end of the file`);
    headerText = new Uint8Array(headerLength);
    await handle.read(headerText, 0, headerLength, 8);
  } finally {
    await handle.close();
  }
  let header: Record<string, HeaderEntry>;
  try {
    header = JSON.parse(new TextDecoder().decode(headerText)) as Record<string, HeaderEntry>;
  } catch (e) {
    throw modelError("model_file_invalid", `${file}: header is not JSON (${(e as Error).message})`);
  }
  delete (header as Record<string, unknown>).__metadata__;
  const dataStart = 8 + headerLength;
  for (const [name, entry] of Object.entries(header)) {
    const width = BYTES[entry.dtype as StoredDType] ?? OTHER_BYTES[entry.dtype];
    if (width === undefined)
      throw modelError(
        "model_file_invalid",
        `${file}: tensor ${name} has unknown dtype ${JSON.stringify(entry.dtype)}`,
      );
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = entry.data_offsets;
    if (end - begin !== count * width || dataStart + end > fileSize) {
      throw modelError(
        "model_file_invalid",
        `${file}: tensor ${name} data_offsets [${begin}, ${end}] do not fit shape [${entry.shape}] ${entry.dtype} inside the file`,
      );
    }
  }
  return { header, dataStart, file: full };
}

/** Reads `length` bytes at `position` of `file` into `into` (all of them, or an error naming the file). */
function readExactly(file: string, into: Uint8Array, position: number): void {
  const fd = openSync(file, "r");
  try {
    let done = 0;
    while (done < into.byteLength) {
      const n = readSync(fd, into, done, into.byteLength - done, position + done);
      if (n === 0)
        throw modelError("model_file_invalid", `${path.basename(file)} ended early (was it changed while loading?)`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The tensor stored at [begin, end) of `file` as float32 (F32 is read straight into the result, little-endian hosts only). */
function readFloat32(dtype: StoredDType, file: string, begin: number, end: number): Float32Array {
  const n = (end - begin) / BYTES[dtype];
  const out = new Float32Array(n);
  if (dtype === "F32" && LITTLE_ENDIAN) {
    readExactly(file, new Uint8Array(out.buffer), begin);
    return out;
  }
  const raw = new Uint8Array(end - begin);
  readExactly(file, raw, begin);
  const view = new DataView(raw.buffer);
  if (dtype === "F32") for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  else if (dtype === "F16") for (let i = 0; i < n; i++) out[i] = float16Value(view.getUint16(i * 2, true));
  else {
    // BF16 is the top half of a float32.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The checkpoint's tensors: names and shapes up front, data read (and widened) on demand. */
export class SafetensorsCheckpoint {
  private constructor(
    private readonly files: Map<string, ParsedFile>,
    readonly tensors: Map<string, TensorEntry>,
  ) {}

  /** The weight files this checkpoint consists of (relative to the folder). */
  get fileNames(): string[] {
    return [...this.files.keys()];
  }

  static async open(folder: string, present: Set<string>): Promise<SafetensorsCheckpoint> {
    let fileNames: string[];
    let index: Record<string, string> | null = null;
    if (present.has(INDEX_FILE)) {
      const json = JSON.parse(await readFile(path.join(folder, INDEX_FILE), "utf8")) as {
        weight_map?: Record<string, string>;
      };
      if (!json.weight_map || typeof json.weight_map !== "object")
        throw modelError("model_file_invalid", `${INDEX_FILE}: no weight_map`);
      index = json.weight_map;
      fileNames = [...new Set(Object.values(index))].sort();
      for (const f of fileNames) {
        if (f.includes("/") || f.includes("\\") || f.startsWith("."))
          throw modelError(
            "model_file_invalid",
            `${INDEX_FILE}: shard name ${JSON.stringify(f)} is not a plain file name`,
          );
        if (!present.has(f))
          throw modelError("model_file_missing", `${f} (listed in ${INDEX_FILE}) is missing from ${folder}`);
      }
    } else if (present.has(SINGLE_FILE)) fileNames = [SINGLE_FILE];
    else throw modelError("model_file_missing", `${folder} has neither ${SINGLE_FILE} nor ${INDEX_FILE}`);

    const files = new Map<string, ParsedFile>();
    const tensors = new Map<string, TensorEntry>();
    for (const f of fileNames) {
      const parsed = await parseFile(f, path.join(folder, f));
      files.set(f, parsed);
      for (const [name, e] of Object.entries(parsed.header)) {
        if (index && index[name] !== f) continue; // the index decides which shard owns a tensor
        tensors.set(name, { dtype: e.dtype, shape: e.shape, file: f });
      }
    }
    if (index)
      for (const [name, f] of Object.entries(index))
        if (!tensors.has(name))
          throw modelError("tensor_missing", `${INDEX_FILE} puts ${name} in ${f}, which does not contain it`);
    return new SafetensorsCheckpoint(files, tensors);
  }

  /** Absolute path of every weight file, by name (for the fingerprint). */
  filePaths(): [string, string][] {
    return [...this.files.entries()].map(([f, p]) => [f, p.file]);
  }

  read(name: string): Float32Array {
    const entry = this.tensors.get(name);
    if (!entry) throw modelError("tensor_missing", `tensor ${name} is missing from the checkpoint`);
    if (!(entry.dtype in BYTES))
      throw modelError(
        "tensor_dtype_unsupported",
        `${entry.file}: tensor ${name} is ${entry.dtype}; only F32, F16 and BF16 are supported`,
      );
    const file = this.files.get(entry.file)!;
    const [begin, end] = file.header[name].data_offsets;
    return readFloat32(entry.dtype as StoredDType, file.file, file.dataStart + begin, file.dataStart + end);
  }
}
