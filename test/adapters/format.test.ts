import { describe, expect, it } from "vitest";
import { USE_LITE_DIMS, prefixWidth } from "../../src/backbone/dims.js";
import { SktError } from "../../src/errors.js";
import {
  ADAPTER_ERROR_CODES,
  MAX_ABS_TENSOR_VALUE,
  MAX_HEADER_BYTES,
  decodeAdapter,
  firstDuplicateKey,
  encodeAdapter,
  peekMetadata,
  type AdapterFile,
  type DecodeOptions,
} from "../../src/adapters/format.js";
import { expectedShapes, MAX_PROMPT_TEXT_BYTES, MAX_PROMPT_TEXT_CHARS, parameterCount, prefixLayout, PROBLEM_TYPES } from "../../src/adapters/spec.js";
import {
  TEST_FINGERPRINT,
  makeAdapter,
  mutateHeader,
  rawFile,
  rawFileBytes,
  setTensorValues,
  splitFile,
} from "../helpers/random-adapter.js";

const OPTS: DecodeOptions = { dims: USE_LITE_DIMS, fingerprint: TEST_FINGERPRINT };

/** Run `fn`, demand an invalid_adapter SktError with `code`, and hand it back for message checks. */
function expectRejected(fn: () => unknown, code: string): SktError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(SktError);
  const err = caught as SktError;
  expect({ kind: err.kind, code: err.code, message: err.message }).toMatchObject({ kind: "invalid_adapter", code });
  expect(ADAPTER_ERROR_CODES).toContain(code);
  return err;
}

function expectSameAdapter(got: AdapterFile, want: AdapterFile): void {
  expect(got.metadata).toEqual(want.metadata);
  expect(Object.keys(got.tensors).sort()).toEqual(Object.keys(want.tensors).sort());
  for (const [name, t] of Object.entries(want.tensors)) {
    expect(got.tensors[name].shape).toEqual(t.shape);
    expect(got.tensors[name].data).toBeInstanceOf(Float32Array);
    // Bitwise comparison: exact (keeps -0) and much faster than a deep equal over ~1M floats.
    expect(bytesOf(got.tensors[name].data).equals(bytesOf(t.data)), name).toBe(true);
  }
}

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** A small valid file (prompt, pooling, 2 labels, L = 4) to break in the tests below. */
const base = () => encodeAdapter(makeAdapter());

describe("spec", () => {
  it("gives the documented shapes for the embedded backbone", () => {
    expect(prefixWidth(USE_LITE_DIMS)).toBe(1536);
    const meta = { variant: "prefix", pooling: true, promptLength: 12, problemType: "regression", labels: ["y"] } as const;
    expect(expectedShapes(meta, USE_LITE_DIMS)).toEqual({
      "pool.weight": [1, 512],
      "pool.bias": [1],
      "proj.weight": [12 * 1536, 12],
      "proj.bias": [12 * 1536],
      "head.weight": [1, 512],
      "head.bias": [1],
    });
    const prompt = { ...meta, variant: "prompt", pooling: false, problemType: "single_label_classification", labels: ["a", "b"] } as const;
    expect(expectedShapes(prompt, USE_LITE_DIMS)).toEqual({
      "proj.weight": [256, 512],
      "proj.bias": [256],
      "head.weight": [2, 512],
      "head.bias": [2],
    });
    expect(parameterCount(prompt, USE_LITE_DIMS)).toBe(256 * 512 + 256 + 2 * 512 + 2);
  });

  it("lays a prefix row out as [layer0 key, layer0 value, layer1 key, layer1 value]", () => {
    expect(prefixLayout(USE_LITE_DIMS)).toEqual([
      { layer: 0, heads: 4, headDim: 64, keyOffset: 0, valueOffset: 256 },
      { layer: 1, heads: 4, headDim: 128, keyOffset: 512, valueOffset: 1024 },
    ]);
  });
});

describe("round trip", () => {
  const cases = (["prompt", "prefix"] as const).flatMap((variant) =>
    [true, false].flatMap((pooling) => PROBLEM_TYPES.map((problemType) => ({ variant, pooling, problemType }))),
  );

  it.each(cases)("$variant pooling=$pooling $problemType", (o) => {
    const adapter = makeAdapter({ ...o, promptLength: 3, training: { epochs: 2, accuracy: 0.9 }, textPair: true });
    const decoded = decodeAdapter(encodeAdapter(adapter), OPTS);
    expectSameAdapter(decoded, adapter);
  });

  it("writes the same bytes every time, whatever the key order", () => {
    const a = makeAdapter({ training: { b: 1, a: { d: 2, c: [3] } } });
    const b = makeAdapter({ training: { a: { c: [3], d: 2 }, b: 1 } });
    const reversed: AdapterFile = {
      metadata: b.metadata,
      tensors: Object.fromEntries(Object.entries(b.tensors).reverse()),
    };
    const bytes = encodeAdapter(a);
    expect(encodeAdapter(a)).toEqual(bytes);
    expect(encodeAdapter(reversed)).toEqual(bytes);
    expect(encodeAdapter(decodeAdapter(bytes, OPTS))).toEqual(bytes);
  });

  it("writes a standard, space-padded, sorted header", () => {
    const bytes = base();
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.startsWith('{"__metadata__":{')).toBe(true);
    const json = text.trimEnd();
    expect(json.endsWith("}")).toBe(true);
    expect(text.length - json.length).toBeLessThan(8); // only the alignment padding, all spaces
    const { header } = splitFile(bytes);
    const names = Object.keys(header).filter((k) => k !== "__metadata__");
    expect(names).toEqual([...names].sort());
    expect(header["head.bias"]).toEqual({ data_offsets: [0, 8], dtype: "F32", shape: [2] });
    expect(header.__metadata__).toMatchObject({ format: "sk-tuning-adapter", format_version: "1", pooling: "true" });
  });

  it("decodes an input that is not 4-byte aligned", () => {
    const adapter = makeAdapter({ variant: "prefix", pooling: false });
    const bytes = encodeAdapter(adapter);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expectSameAdapter(decodeAdapter(shifted.subarray(1), OPTS), adapter);
  });

  it("peeks at the metadata without the backbone", () => {
    const adapter = makeAdapter({ problemType: "regression" });
    expect(peekMetadata(encodeAdapter(adapter))).toEqual(adapter.metadata);
  });

  it("treats a missing text_pair as false", () => {
    const bytes = mutateHeader(base(), (h) => delete h.__metadata__.text_pair);
    expect(decodeAdapter(bytes, OPTS).metadata.textPair).toBe(false);
  });
});

describe("file framing", () => {
  it("rejects a file shorter than the length field", () => {
    expectRejected(() => decodeAdapter(base().subarray(0, 5), OPTS), "file_too_small");
    expectRejected(() => peekMetadata(new Uint8Array(0)), "file_too_small");
  });

  it("rejects a file over the size limit", () => {
    expectRejected(() => decodeAdapter(base(), { ...OPTS, maxBytes: 1000 }), "file_too_large");
  });

  it("rejects a header truncated by the end of the file", () => {
    const bytes = base();
    expectRejected(() => decodeAdapter(bytes.subarray(0, 40), OPTS), "header_length_out_of_bounds");
  });

  it("rejects a header length beyond the file", () => {
    const bytes = base().slice();
    new DataView(bytes.buffer).setBigUint64(0, BigInt(bytes.length), true);
    expectRejected(() => decodeAdapter(bytes, OPTS), "header_length_out_of_bounds");
  });

  it.each([2n ** 53n, 2n ** 64n - 1n])("rejects a huge header length %s before reading it", (n) => {
    const bytes = base().slice();
    new DataView(bytes.buffer).setBigUint64(0, n, true);
    const err = expectRejected(() => decodeAdapter(bytes, OPTS), "header_length_out_of_bounds");
    expect(err.details?.declared).toBe(n.toString());
  });

  it("rejects a header over the header cap even when the file is long enough", () => {
    const bytes = rawFile(`{"__metadata__":{}}${" ".repeat(MAX_HEADER_BYTES)}`);
    expectRejected(() => peekMetadata(bytes), "header_length_out_of_bounds");
  });

  it.each([
    ["not JSON", "{not json"],
    ["empty", ""],
    ["a byte-order mark", '\uFEFF{"__metadata__":{}}'],
  ])("rejects a header that is %s", (_what, text) => {
    expectRejected(() => peekMetadata(rawFile(text)), "header_not_json");
  });

  it("rejects a header that is not UTF-8", () => {
    expectRejected(() => peekMetadata(rawFileBytes(new Uint8Array([0x7b, 0xff, 0x7d]))), "header_not_json");
  });

  it.each(["[]", "null", "42", ' {"__metadata__":{}}'])("rejects the non-object header %j", (text) => {
    expectRejected(() => peekMetadata(rawFile(text)), "header_not_object");
  });
});

describe("metadata", () => {
  const breakField = (edit: (m: Record<string, unknown>) => void) => mutateHeader(base(), (h) => edit(h.__metadata__));

  it.each<[string, (m: Record<string, unknown>) => void]>([
    ["task", (m) => delete m.task],
    ["task", (m) => (m.task = "Bad Task")],
    ["task", (m) => (m.task = "a".repeat(65))],
    ["format", (m) => (m.format = "something-else")],
    ["variant", (m) => (m.variant = "middle")],
    ["pooling", (m) => (m.pooling = "yes")],
    ["prompt_text", (m) => (m.prompt_text = "")],
    ["prompt_length", (m) => (m.prompt_length = "0")],
    ["prompt_length", (m) => (m.prompt_length = "65")],
    ["prompt_length", (m) => (m.prompt_length = "1.5")],
    ["prompt_length", (m) => (m.prompt_length = "04")],
    ["labels", (m) => (m.labels = "negative,positive")],
    ["labels", (m) => (m.labels = '["a","a"]')],
    ["labels", (m) => (m.labels = '["a",""]')],
    ["labels", (m) => (m.labels = '["only"]')],
    ["labels", (m) => (m.labels = '{"a":1}')],
    ["labels", (m) => ((m.problem_type = "regression"), (m.labels = '["a","b"]'))],
    ["problem_type", (m) => (m.problem_type = "ranking")],
    ["backbone", (m) => (m.backbone = "")],
    ["backbone_fingerprint", (m) => (m.backbone_fingerprint = TEST_FINGERPRINT.toUpperCase())],
    ["max_length", (m) => (m.max_length = "4")], // not above prompt_length 4
    ["max_length", (m) => (m.max_length = "1e3")],
    ["training", (m) => (m.training = "[1,2]")],
    ["training", (m) => (m.training = "{oops")],
    ["text_pair", (m) => (m.text_pair = "1")],
    ["extra", (m) => (m.extra = "x")],
    ["pooling", (m) => (m.pooling = true)],
  ])("rejects a bad %s", (field, edit) => {
    const err = expectRejected(() => decodeAdapter(breakField(edit), OPTS), "bad_metadata");
    expect(err.message).toContain(field);
    expect(err.details?.field).toBe(field);
  });

  it("rejects a missing __metadata__", () => {
    const bytes = mutateHeader(base(), (h) => delete h.__metadata__);
    expectRejected(() => decodeAdapter(bytes, OPTS), "bad_metadata");
  });

  it("rejects max_length beyond the backbone's positions (needs dims, so not in peek)", () => {
    const bytes = breakField((m) => (m.max_length = "129"));
    expect(peekMetadata(bytes).maxLength).toBe(129);
    const err = expectRejected(() => decodeAdapter(bytes, OPTS), "bad_metadata");
    expect(err.message).toContain("128");
  });

  it("rejects an unknown format version", () => {
    expectRejected(() => decodeAdapter(breakField((m) => (m.format_version = "2")), OPTS), "unsupported_format_version");
  });

  it("rejects another backbone's fingerprint", () => {
    const err = expectRejected(() => decodeAdapter(base(), { ...OPTS, fingerprint: "f".repeat(64) }), "fingerprint_mismatch");
    expect(err.message).toContain(TEST_FINGERPRINT);
  });

  it("rejects bad metadata on write too", () => {
    const adapter = makeAdapter();
    adapter.metadata.task = "no spaces allowed";
    expectRejected(() => encodeAdapter(adapter), "bad_metadata");
  });
});

describe("tensors", () => {
  it("rejects a dtype other than F32", () => {
    const bytes = mutateHeader(base(), (h) => (h["head.bias"].dtype = "F16"));
    expectRejected(() => decodeAdapter(bytes, OPTS), "unsupported_dtype");
  });

  it.each<[string, unknown]>([
    ["a non-object", 5],
    ["a missing dtype", { shape: [2], data_offsets: [0, 8] }],
    ["a non-integer shape", { dtype: "F32", shape: [2.5], data_offsets: [0, 8] }],
    ["reversed offsets", { dtype: "F32", shape: [2], data_offsets: [8, 0] }],
    ["an extra field", { dtype: "F32", shape: [2], data_offsets: [0, 8], strides: [1] }],
  ])("rejects an entry with %s", (_what, entry) => {
    const bytes = mutateHeader(base(), (h) => (h["head.bias"] = entry));
    expectRejected(() => decodeAdapter(bytes, OPTS), "bad_tensor_entry");
  });

  it("rejects an unknown tensor", () => {
    const bytes = mutateHeader(base(), (h) => (h["extra.weight"] = { dtype: "F32", shape: [1], data_offsets: [0, 4] }));
    const err = expectRejected(() => decodeAdapter(bytes, OPTS), "unknown_tensor");
    expect(err.message).toContain("extra.weight");
  });

  it("rejects a tensor that belongs to another pooling form", () => {
    // The metadata now says non-pooling, so the file's pool.* tensors have no place in it.
    const bytes = mutateHeader(base(), (h) => (h.__metadata__.pooling = "false"));
    expectRejected(() => decodeAdapter(bytes, OPTS), "unknown_tensor");
  });

  it("rejects a missing tensor", () => {
    const bytes = mutateHeader(base(), (h) => delete h["head.bias"]);
    const err = expectRejected(() => decodeAdapter(bytes, OPTS), "missing_tensor");
    expect(err.message).toContain("head.bias");
  });

  it("rejects shapes of the other variant", () => {
    const bytes = mutateHeader(base(), (h) => (h.__metadata__.variant = "prefix"));
    const err = expectRejected(() => decodeAdapter(bytes, OPTS), "shape_mismatch");
    expect(err.message).toMatch(/proj\.(bias|weight)/);
    expect(err.message).toContain("prefix width");
  });

  it("rejects shapes for another backbone width", () => {
    const dims = { ...USE_LITE_DIMS, embedDim: 128 };
    const err = expectRejected(() => decodeAdapter(base(), { ...OPTS, dims }), "shape_mismatch");
    expect(err.message).toContain("H_in = 128");
    expect(err.details).toMatchObject({ expected: [4 * 128] });
  });

  it("rejects a head that does not match the label count", () => {
    const bytes = mutateHeader(base(), (h) => (h.__metadata__.labels = '["a","b","c"]'));
    const err = expectRejected(() => decodeAdapter(bytes, OPTS), "shape_mismatch");
    expect(err.message).toContain("head.");
    expect(err.message).toContain("C = 3");
  });

  it("rejects a projection that does not match prompt_length", () => {
    const bytes = mutateHeader(base(), (h) => (h.__metadata__.prompt_length = "5"));
    const err = expectRejected(() => decodeAdapter(bytes, OPTS), "shape_mismatch");
    expect(err.message).toContain("prompt_length = 5");
  });

  it("rejects wrong shapes and data lengths on write", () => {
    const adapter = makeAdapter();
    adapter.tensors["head.bias"] = { shape: [3], data: new Float32Array(3) };
    expectRejected(() => encodeAdapter(adapter), "shape_mismatch");
    adapter.tensors["head.bias"] = { shape: [2], data: new Float32Array(3) };
    expectRejected(() => encodeAdapter(adapter), "shape_mismatch");
    adapter.tensors["head.bias"] = { shape: [2], data: new Float32Array(2) };
    adapter.tensors["head.extra"] = { shape: [2], data: new Float32Array(2) };
    expectRejected(() => encodeAdapter(adapter), "unknown_tensor");
  });

  it("rejects more parameters than allowed", () => {
    const err = expectRejected(() => decodeAdapter(base(), { ...OPTS, maxParameters: 1000 }), "too_many_parameters");
    expect(err.details?.parameters).toBe(parameterCount(makeAdapter().metadata, USE_LITE_DIMS));
  });
});

describe("data layout", () => {
  const dataLength = () => splitFile(base()).data.length;

  it("rejects overlapping tensors", () => {
    // head.bias is [0, 8]; move pool.bias (one float) inside it.
    const bytes = mutateHeader(base(), (h) => (h["pool.bias"].data_offsets = [4, 8]));
    const err = expectRejected(() => decodeAdapter(bytes, OPTS), "offsets_overlap");
    expect(err.message).toContain("pool.bias");
  });

  it("rejects offsets past the data buffer", () => {
    const n = dataLength();
    const bytes = mutateHeader(base(), (h) => (h["head.bias"].data_offsets = [n, n + 8]));
    expectRejected(() => decodeAdapter(bytes, OPTS), "offsets_out_of_bounds");
  });

  it("rejects a file truncated inside the data", () => {
    const bytes = base();
    expectRejected(() => decodeAdapter(bytes.subarray(0, bytes.length - 4), OPTS), "offsets_out_of_bounds");
  });

  it("rejects offsets whose span does not match the shape", () => {
    const bytes = mutateHeader(base(), (h) => (h["head.bias"].data_offsets = [0, 4]));
    expectRejected(() => decodeAdapter(bytes, OPTS), "offsets_size_mismatch");
  });

  it("rejects unused bytes between tensors", () => {
    const shift = (d: Uint8Array) => {
      const out = new Uint8Array(d.length + 4);
      out.set(d, 4);
      return out;
    };
    const bytes = mutateHeader(
      base(),
      (h) => {
        for (const [k, v] of Object.entries(h)) if (k !== "__metadata__") v.data_offsets = v.data_offsets.map((o: number) => o + 4);
      },
      shift,
    );
    expectRejected(() => decodeAdapter(bytes, OPTS), "offsets_gap");
  });

  it("rejects trailing bytes after the last tensor", () => {
    const bytes = base();
    const longer = new Uint8Array(bytes.length + 4);
    longer.set(bytes);
    expectRejected(() => decodeAdapter(longer, OPTS), "trailing_bytes");
  });

  it.each([NaN, Infinity, -Infinity])("rejects %s in the data and names the tensor and index", (bad) => {
    const bytes = base().slice();
    const { header } = splitFile(bytes);
    const dataStart = bytes.length - dataLength();
    const [begin] = header["proj.bias"].data_offsets;
    new DataView(bytes.buffer).setFloat32(dataStart + begin + 4 * 7, bad, true);
    const err = expectRejected(() => decodeAdapter(bytes, OPTS), "non_finite_value");
    expect(err.details).toEqual({ tensor: "proj.bias", index: 7 });
    expect(err.message).toContain("proj.bias");
  });

  it("refuses to write non-finite values", () => {
    const adapter = makeAdapter();
    adapter.tensors["head.weight"].data[3] = NaN;
    expectRejected(() => encodeAdapter(adapter), "non_finite_value");
  });

  // Issue 18, defect 2: 1e38 in a bias uploaded fine and every score came back null.
  it.each([
    ["proj.bias", 1e38],
    ["pool.bias", -3e38],
    ["head.weight", 3.4028234663852886e38], // float32's largest finite value
    ["head.bias", MAX_ABS_TENSOR_VALUE * 1.0001],
  ])("rejects finite %s = %s beyond ±MAX_ABS_TENSOR_VALUE", (tensor, value) => {
    const err = expectRejected(() => decodeAdapter(setTensorValues(base(), tensor, (i) => (i === 0 ? value : 0.1)), OPTS), "value_out_of_range");
    expect(err.details).toEqual({ tensor, index: 0, maxAbs: MAX_ABS_TENSOR_VALUE });
    const adapter = makeAdapter();
    adapter.tensors[tensor].data[0] = value;
    expectRejected(() => encodeAdapter(adapter), "value_out_of_range");
  });

  it("accepts values at the bound, and a caller may lift it", () => {
    const atBound = setTensorValues(base(), "proj.bias", (i) => (i % 2 ? MAX_ABS_TENSOR_VALUE : -MAX_ABS_TENSOR_VALUE));
    expect(decodeAdapter(atBound, OPTS).tensors["proj.bias"].data[1]).toBe(MAX_ABS_TENSOR_VALUE);
    const huge = setTensorValues(base(), "proj.bias", () => 1e38);
    expect(decodeAdapter(huge, { ...OPTS, maxAbsValue: Infinity }).tensors["proj.bias"].data[0]).toBeCloseTo(1e38, -32);
    // Non-finite values stay refused whatever the bound.
    expectRejected(() => decodeAdapter(setTensorValues(base(), "proj.bias", () => Infinity), { ...OPTS, maxAbsValue: Infinity }), "non_finite_value");
  });
});

describe("duplicate keys (issue 18: JSON.parse keeps the last one silently)", () => {
  it("finds the first repeated key at any depth, and only in objects", () => {
    expect(firstDuplicateKey('{"a":1,"b":2}')).toBeUndefined();
    expect(firstDuplicateKey('{"a":1,"a":2}')).toBe("a");
    expect(firstDuplicateKey('{"x":{"a":1,"b":{"c":1,"c":2}},"a":3}')).toBe("c");
    expect(firstDuplicateKey('{"a":{"k":1},"b":{"k":1}}')).toBeUndefined(); // same key, different objects
    expect(firstDuplicateKey('["a","a",{"a":1},{"a":2}]')).toBeUndefined(); // array values are not keys
    expect(firstDuplicateKey('{"a":"a","b":"a"}')).toBeUndefined(); // values are not keys
    expect(firstDuplicateKey('{"a\\"":1,"a\\u0022":2}')).toBe('a"'); // escapes decoded before comparing
    expect(firstDuplicateKey('{"q\\\\":1,"q\\\\":2}')).toBe("q\\");
    expect(firstDuplicateKey('{"a":"x\\",\\"a\\":1","b":2}')).toBeUndefined(); // quotes inside strings
    expect(firstDuplicateKey('{ "a" : 1 , "a" : 2 }')).toBe("a");
    expect(firstDuplicateKey('{"__proto__":1,"__proto__":2}')).toBe("__proto__");
  });

  it("random objects: none found in JSON.stringify's output, and exactly the key appended a second time", () => {
    for (let seed = 1; seed <= 200; seed++) {
      let s = seed;
      const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const obj: Record<string, unknown> = {};
      const keys = Array.from({ length: 1 + Math.floor(rand() * 6) }, (_, i) => `k${i}${rand() < 0.3 ? '"\\u00e9' : ""}`);
      for (const k of keys) obj[k] = rand() < 0.5 ? { inner: [1, { k }] } : [k, k];
      const text = JSON.stringify(obj);
      expect(firstDuplicateKey(text)).toBeUndefined();
      const dup = keys[Math.floor(rand() * keys.length)];
      const withDup = `${text.slice(0, -1)},${JSON.stringify(dup)}:0}`;
      expect(firstDuplicateKey(withDup)).toBe(dup);
    }
  });

  it("rejects a repeated tensor entry and a repeated metadata field, naming the key", () => {
    const { header, data } = splitFile(base());
    const text = JSON.stringify(header);
    const entry = JSON.stringify(header["head.bias"]);
    const twoBiases = text.replace(`"head.bias":${entry}`, `"head.bias":${entry},"head.bias":${entry}`);
    expect(expectRejected(() => decodeAdapter(rawFile(twoBiases, data), OPTS), "duplicate_key").details).toEqual({ key: "head.bias" });
    const twoTasks = text.replace(/"task":"([^"]*)"/, '"task":"other","task":"$1"');
    expect(twoTasks).not.toBe(text);
    expect(expectRejected(() => peekMetadata(rawFile(twoTasks, data)), "duplicate_key").details).toEqual({ key: "task" });
  });

  it("rejects a repeated key inside the training summary", () => {
    const bytes = mutateHeader(base(), (h) => (h.__metadata__.training = '{"steps":1,"steps":2}'));
    expect(expectRejected(() => peekMetadata(bytes), "duplicate_key").details).toEqual({ key: "steps" });
  });
});

describe("prompt_text bounds (issue 18, defect 4: checked before anything tokenizes it)", () => {
  const withPrompt = (text: string) => mutateHeader(base(), (h) => (h.__metadata__.prompt_text = text));
  it.each([
    ["characters", "a".repeat(MAX_PROMPT_TEXT_CHARS + 1)],
    ["bytes", "中".repeat(Math.floor(MAX_PROMPT_TEXT_BYTES / 3) + 1)],
    ["characters (a megabyte of one character)", "\ufdfa".repeat(345_000)],
  ])("rejects a prompt_text over the limit in %s", (_what, text) => {
    const err = expectRejected(() => peekMetadata(withPrompt(text)), "bad_metadata");
    expect(err.details).toEqual({ field: "prompt_text" });
    expect(err.message.length).toBeLessThan(600);
  });

  it("accepts a prompt_text at both limits", () => {
    expect(peekMetadata(withPrompt("a".repeat(MAX_PROMPT_TEXT_CHARS))).promptText).toHaveLength(MAX_PROMPT_TEXT_CHARS);
    const cjk = "中".repeat(Math.floor(MAX_PROMPT_TEXT_BYTES / 3));
    expect(peekMetadata(withPrompt(cjk)).promptText).toBe(cjk);
  });
});
