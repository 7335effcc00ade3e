/**
 * Writes safetensors files for tests (F32, F16 or BF16), independently of the loader's reader.
 * Half-precision values are rounded to nearest-even here; `quantize` returns the exact values a
 * stored tensor holds, so an oracle can compute with what the loader should read back.
 */
import { writeFile } from "node:fs/promises";

export type WriteDType = "F32" | "F16" | "BF16";

export interface WriteTensor {
  shape: number[];
  data: ArrayLike<number>;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The value `x` becomes when stored as `dtype`. */
export function quantize(x: number, dtype: WriteDType): number {
  if (dtype === "F32") return Math.fround(x);
  if (x === 0) return 0;
  const mantissaBits = dtype === "F16" ? 10 : 7;
  const minExponent = dtype === "F16" ? -14 : -126;
  const exponent = Math.max(minExponent, Math.floor(Math.log2(Math.abs(Math.fround(x)))));
  const quantum = 2 ** (exponent - mantissaBits);
  return roundHalfEven(Math.fround(x) / quantum) * quantum;
}

function encodeValue(v: number, dtype: WriteDType, view: DataView, offset: number): void {
  if (dtype === "F32") return view.setFloat32(offset, v, true);
  if (dtype === "BF16") {
    const f = new DataView(new ArrayBuffer(4));
    f.setFloat32(0, v, true);
    return view.setUint16(offset, f.getUint32(0, true) >>> 16, true); // v is already a BF16 value
  }
  // F16 bits of an exactly representable v.
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  let bits: number;
  if (a === 0) bits = 0;
  else if (a < 2 ** -14)
    bits = Math.round(a / 2 ** -24); // subnormal
  else {
    const e = Math.floor(Math.log2(a));
    bits = ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
  }
  view.setUint16(offset, sign | bits, true);
}

const WIDTH: Record<WriteDType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Serialises `tensors` (in insertion order) with every value stored as `dtype`. */
export function safetensorsBytes(tensors: Record<string, WriteTensor>, dtype: WriteDType): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.data.length * WIDTH[dtype];
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8); // the format pads the header to 8 bytes
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of Object.values(tensors)) {
    for (let i = 0; i < t.data.length; i++, at += WIDTH[dtype])
      encodeValue(quantize(t.data[i], dtype), dtype, view, at);
  }
  return out;
}

export async function writeSafetensors(
  file: string,
  tensors: Record<string, WriteTensor>,
  dtype: WriteDType = "F32",
): Promise<void> {
  await writeFile(file, safetensorsBytes(tensors, dtype));
}
