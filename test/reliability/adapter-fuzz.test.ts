/**
 * Fuzzing the adapter reader and the upload path behind it.
 *
 * 1. `decodeAdapter` / `peekMetadata` over random bytes and mutations of valid files (the header
 *    length field, offsets, shapes, dtypes, metadata values, truncation, appended and flipped
 *    bytes): the only failure is an `SktError` of kind `invalid_adapter` with a documented code —
 *    never a TypeError or RangeError — and a success is a well-formed adapter.
 * 2. Headers that claim huge sizes (a 2^40-element tensor, a 2^50-byte header, 6·10^4 labels) fail
 *    with the right code without allocating anything near that size (array-buffer memory is checked
 *    before and after).
 * 3. Through the real engine (registry + store): a rejected upload leaves no file, no version and
 *    no task behind, and the previous version keeps serving; never a half-loaded adapter.
 *
 * Classes added after issue 18: extreme finite floats in the data (±3e38, float32's largest value,
 * just past the ±1e4 bound), keys repeated in the header JSON, and labels, metadata keys and tensor
 * names like `__proto__`, `constructor`, `toString`.
 */
import fc from "fast-check";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ADAPTER_ERROR_CODES,
  MAX_ABS_TENSOR_VALUE,
  MAX_HEADER_BYTES,
  decodeAdapter,
  encodeAdapter,
  peekMetadata,
  type DecodeOptions,
} from "../../src/adapters/format.js";
import { AdapterStore, DEFAULT_MAX_VERSIONS_PER_TASK } from "../../src/adapters/store.js";
import { expectedShapes, numel } from "../../src/adapters/spec.js";
import { USE_LITE_DIMS } from "../../src/backbone/dims.js";
import { Engine } from "../../src/engine/engine.js";
import { SktError } from "../../src/errors.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import {
  TEST_FINGERPRINT,
  makeAdapter,
  rawFile,
  rawFileBytes,
  setTensorValues,
  splitFile,
} from "../helpers/random-adapter.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { listTree } from "./helpers.js";

const RUNS = Number(process.env.FC_RUNS ?? 1);
const fcOptions = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns: Math.max(1, Math.round(numRuns * RUNS)),
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
});

const MIB = 2 ** 20;
const OPTS: DecodeOptions = { dims: USE_LITE_DIMS, fingerprint: TEST_FINGERPRINT };
/** Codes the registry adds on top of the reader's (it checks the prompt against the tokenizer). */
const REGISTRY_CODES = ["prompt_length_mismatch", "task_mismatch", "non_finite_output"];
const tally = {
  decoded: 0,
  rejected: 0,
  accepted: 0,
  codes: new Map<string, number>(),
  uploads: { rejected: 0, accepted: 0, codes: new Map<string, number>() },
};

afterAll(() => {
  const codes = Object.fromEntries([...tally.codes].sort((a, b) => b[1] - a[1]));
  console.log(
    `[adapter-fuzz] decoded ${tally.decoded} inputs: ${tally.rejected} rejected, ${tally.accepted} accepted; uploads through the engine: ${tally.uploads.rejected} rejected, ${tally.uploads.accepted} accepted`,
  );
  console.log(`[adapter-fuzz] decode codes ${JSON.stringify(codes)}`);
  console.log(`[adapter-fuzz] upload codes ${JSON.stringify(Object.fromEntries(tally.uploads.codes))}`);
});

/** Decode and classify the outcome; anything but an invalid_adapter SktError fails the property. */
function decodeOutcome(bytes: Uint8Array, opts: DecodeOptions = OPTS): string {
  tally.decoded++;
  try {
    const file = decodeAdapter(bytes, opts);
    // A success must be a complete, finite adapter of exactly the expected shapes.
    const want = expectedShapes(file.metadata, opts.dims);
    expect(Object.keys(file.tensors).sort()).toEqual(Object.keys(want).sort());
    for (const [name, shape] of Object.entries(want)) {
      expect(file.tensors[name].shape).toEqual(shape);
      expect(file.tensors[name].data.length).toBe(numel(shape));
      expect(file.tensors[name].data.every((v) => Math.abs(v) <= MAX_ABS_TENSOR_VALUE)).toBe(true); // finite and within the bound
    }
    tally.accepted++;
    return "ok";
  } catch (e) {
    if (!(e instanceof SktError))
      throw new Error(`decode threw a ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`, { cause: e });
    expect(e.kind).toBe("invalid_adapter");
    expect(ADAPTER_ERROR_CODES as readonly string[]).toContain(e.code);
    expect(e.message.length).toBeLessThan(2000); // hostile values are quoted, not echoed whole
    tally.rejected++;
    tally.codes.set(e.code, (tally.codes.get(e.code) ?? 0) + 1);
    return e.code;
  }
}

function peekOutcome(bytes: Uint8Array): void {
  try {
    peekMetadata(bytes);
  } catch (e) {
    if (!(e instanceof SktError))
      throw new Error(`peek threw a ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`, { cause: e });
    expect(e.kind).toBe("invalid_adapter");
  }
}

// ---- mutations ----------------------------------------------------------------------------------

const BASES = [
  encodeAdapter(makeAdapter({ variant: "prompt", pooling: true })),
  encodeAdapter(makeAdapter({ variant: "prompt", pooling: false, problemType: "regression" })),
  encodeAdapter(
    makeAdapter({ variant: "prefix", pooling: true, problemType: "multi_label_classification", promptLength: 2 }),
  ),
  encodeAdapter(makeAdapter({ variant: "prefix", pooling: false, textPair: true, training: { steps: 10, note: "x" } })),
  encodeAdapter(
    makeAdapter({
      labels: ["__proto__", "constructor", "toString"],
      training: JSON.parse('{"__proto__":1,"constructor":{"toString":2}}') as Record<string, unknown>,
    }),
  ),
];

/** Float32 bit patterns of finite values at and past the edge of what an adapter may hold. */
const FLOAT32_MAX = 3.4028234663852886e38;
const EXTREME_FINITE_BITS = [
  3e38,
  -3e38,
  1e38,
  FLOAT32_MAX,
  -FLOAT32_MAX,
  1e5,
  MAX_ABS_TENSOR_VALUE * 1.001,
  -MAX_ABS_TENSOR_VALUE * 1.001,
].map((v) => new Uint32Array(Float32Array.of(v).buffer)[0]);

const weird: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    2 ** 20,
    2 ** 31,
    2 ** 32,
    2 ** 40,
    2 ** 53,
    2 ** 64,
    1e308,
    -1,
    -0,
    0.5,
    1,
    0,
    "1",
    "",
    [],
    {},
    null,
    true,
    [2 ** 20, 2 ** 20],
    [2 ** 40],
    [-1, 4],
    [1.5],
    ["4"],
    [[4]],
    [0, 2 ** 53],
    [2 ** 53, 0],
  ),
  fc.jsonValue({ maxDepth: 2 }),
  fc.array(fc.oneof(fc.nat(), fc.integer({ min: -5, max: 2 ** 31 }), fc.constantFrom(2 ** 40, 2 ** 53 + 2)), {
    maxLength: 4,
  }),
);

const METADATA_KEYS = [
  "format",
  "format_version",
  "task",
  "variant",
  "pooling",
  "prompt_text",
  "prompt_length",
  "labels",
  "problem_type",
  "backbone",
  "backbone_fingerprint",
  "max_length",
  "training",
  "text_pair",
];
const metaValue = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "0",
    "-1",
    "1e3",
    "01",
    " 4",
    "4 ",
    "999999999999999",
    "9007199254740993",
    "NaN",
    "true",
    "false",
    "prompt",
    "prefix",
    "regression",
    "[]",
    '["a"]',
    '["a","a"]',
    '["a",""]',
    "{}",
    "null",
    "F32",
    "sk-tuning-adapter",
    "2",
  ),
  fc.constantFrom(
    '["__proto__","b"]',
    '["constructor","toString"]',
    '["__proto__","__proto__"]',
    '{"__proto__":{"x":1}}',
    '{"a":1,"a":2}',
    "__proto__",
    "constructor",
  ),
  weird,
);

type HeaderOp = (h: Record<string, any>) => void;
const tensorNames = (h: Record<string, any>) => Object.keys(h).filter((k) => k !== "__metadata__");
const headerOp: fc.Arbitrary<HeaderOp> = fc.oneof(
  fc
    .tuple(
      fc.nat(),
      fc.constantFrom("dtype", "shape", "data_offsets"),
      fc.oneof(weird, fc.constantFrom("F16", "BF16", "F64", "I64", "U8", "f32", "F32 ", "BOOL")),
    )
    .map(([i, field, v]): HeaderOp => (h) => {
      const names = tensorNames(h);
      if (names.length && typeof h[names[i % names.length]] === "object" && h[names[i % names.length]] !== null)
        h[names[i % names.length]][field] = v;
    }),
  fc.tuple(fc.nat(), fc.constantFrom("dtype", "shape", "data_offsets")).map(([i, field]): HeaderOp => (h) => {
    const names = tensorNames(h);
    if (names.length && typeof h[names[i % names.length]] === "object" && h[names[i % names.length]] !== null)
      delete h[names[i % names.length]][field];
  }),
  fc.nat().map((i): HeaderOp => (h) => {
    const names = tensorNames(h);
    if (names.length) delete h[names[i % names.length]];
  }),
  fc
    .tuple(
      fc.oneof(
        fc.string({ maxLength: 12 }),
        fc.constantFrom(
          "pool.weight",
          "pool.bias",
          "proj.weight",
          "proj.bias",
          "head.weight",
          "head.bias",
          "__proto__",
          "constructor",
          "toString",
          "hasOwnProperty",
        ),
      ),
      weird,
    )
    .map(([name, v]): HeaderOp => (h) => {
      h[name] =
        typeof v === "object" && v !== null && !Array.isArray(v)
          ? v
          : { dtype: "F32", shape: [2], data_offsets: [0, 8] };
    }),
  fc.tuple(fc.nat(), fc.integer({ min: -8, max: 8 })).map(([i, delta]): HeaderOp => (h) => {
    const names = tensorNames(h);
    const e = names.length ? h[names[i % names.length]] : undefined;
    if (e && Array.isArray(e.data_offsets))
      e.data_offsets = [e.data_offsets[0] + delta, e.data_offsets[1] + (i % 2 ? delta : 0)];
  }),
  fc
    .tuple(fc.constantFrom(...METADATA_KEYS, "extra", "__proto__", "constructor", "toString"), metaValue)
    .map(([key, v]): HeaderOp => (h) => {
      if (typeof h.__metadata__ === "object" && h.__metadata__ !== null) h.__metadata__[key] = v;
    }),
  fc.constantFrom(...METADATA_KEYS).map((key): HeaderOp => (h) => {
    if (typeof h.__metadata__ === "object" && h.__metadata__ !== null) delete h.__metadata__[key];
  }),
  weird.map((v): HeaderOp => (h) => {
    h.__metadata__ = v;
  }),
);

type ByteOp = (b: Uint8Array) => Uint8Array;
const U64_INTERESTING = [
  0n,
  1n,
  7n,
  8n,
  2n ** 31n,
  2n ** 32n,
  2n ** 40n,
  2n ** 50n,
  2n ** 53n + 1n,
  2n ** 63n,
  2n ** 64n - 1n,
  BigInt(MAX_HEADER_BYTES),
  BigInt(MAX_HEADER_BYTES + 1),
];
const byteOp: fc.Arbitrary<ByteOp> = fc.oneof(
  fc
    .oneof(
      fc.constantFrom(...U64_INTERESTING),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.integer({ min: -16, max: 16 }).map((d) => -BigInt(d)),
    )
    .map((v): ByteOp => (b) => {
      const out = b.slice();
      if (out.length < 8) return out;
      const view = new DataView(out.buffer);
      // Non-positive "v" values are offsets from the true header length.
      const n = v <= 0n ? view.getBigUint64(0, true) + -v : v;
      view.setBigUint64(0, BigInt.asUintN(64, n), true);
      return out;
    }),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([i, byte]): ByteOp => (b) => {
    const out = b.slice();
    out[i % out.length] = byte;
    return out;
  }),
  fc.nat().map(
    (i): ByteOp =>
      (b) =>
        b.slice(0, i % (b.length + 1)),
  ),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra): ByteOp => (b) => {
    const out = new Uint8Array(b.length + extra.length);
    out.set(b);
    out.set(extra, b.length);
    return out;
  }),
  // A key of the header JSON written twice (the first copy with another value): JSON.parse keeps the last.
  fc
    .tuple(fc.nat(), fc.constantFrom('"dup"', "1", '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'))
    .map(([i, value]): ByteOp => (b) => {
      if (b.length < 8) return b;
      const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
      if (n + 8 > b.length) return b;
      const text = new TextDecoder().decode(b.subarray(8, 8 + n));
      const keys = [...text.matchAll(/[{,]\s*("(?:[^"\\]|\\.)*")\s*:/g)];
      if (keys.length === 0) return b;
      const k = keys[i % keys.length];
      const at = k.index + 1;
      return rawFileBytes(
        new TextEncoder().encode(`${text.slice(0, at)}${k[1]}:${value},${text.slice(at)}`),
        b.slice(8 + n),
      );
    }),
  // Overwrite a float in the data area with NaN/Inf, an extreme finite value or a random pattern.
  fc
    .tuple(
      fc.nat(),
      fc.constantFrom(0x7fc00000, 0x7f800000, 0xff800000, 0x00000001, 0xdeadbeef, ...EXTREME_FINITE_BITS),
    )
    .map(([i, bits]): ByteOp => (b) => {
      const out = b.slice();
      if (out.length < 8) return out;
      const n = Number(new DataView(out.buffer).getBigUint64(0, true));
      const data = 8 + n;
      if (data + 4 > out.length) return out;
      const at = data + 4 * (i % Math.floor((out.length - data) / 4));
      new DataView(out.buffer).setUint32(at, bits >>> 0, true);
      return out;
    }),
);

const mutated = fc
  .tuple(fc.constantFrom(...BASES), fc.array(headerOp, { maxLength: 4 }), fc.array(byteOp, { maxLength: 3 }))
  .map(([base, hops, bops]) => {
    let bytes = base;
    if (hops.length) {
      const { header, data } = splitFile(base);
      for (const op of hops) op(header);
      bytes = rawFile(header, data);
    }
    for (const op of bops) bytes = op(bytes);
    return bytes;
  });

// ---- 1. the reader ------------------------------------------------------------------------------

describe("decodeAdapter fuzzing", () => {
  it("random bytes: only invalid_adapter errors", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        expect(decodeOutcome(bytes)).not.toBe("ok");
        peekOutcome(bytes);
      }),
      fcOptions(1500),
    );
  });

  it("a plausible length field followed by random or JSON-ish bytes: only invalid_adapter errors", () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => new TextEncoder().encode(JSON.stringify(v))),
      fc.string({ unit: "binary", maxLength: 300 }).map((s) => new TextEncoder().encode(s)),
    );
    fc.assert(
      fc.property(body, fc.integer({ min: -4, max: 4 }), fc.uint8Array({ maxLength: 64 }), (header, delta, data) => {
        const bytes = rawFileBytes(header, data);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(Math.max(0, header.length + delta)), true);
        decodeOutcome(bytes);
        peekOutcome(bytes);
      }),
      fcOptions(1500),
    );
  });

  it("mutations of valid files (length field, offsets, shapes, dtypes, metadata, bytes): only invalid_adapter errors", () => {
    fc.assert(
      fc.property(mutated, (bytes) => {
        decodeOutcome(bytes);
        peekOutcome(bytes);
      }),
      fcOptions(4000),
    );
  });

  it("every unmutated base file still decodes (the mutations start from valid files)", () => {
    for (const b of BASES) expect(decodeOutcome(b)).toBe("ok");
  });

  it("an extreme finite value anywhere in the data → value_out_of_range naming the tensor and index", () => {
    fc.assert(
      fc.property(fc.constantFrom(...BASES), fc.nat(), fc.constantFrom(...EXTREME_FINITE_BITS), (base, i, bits) => {
        const { header, data } = splitFile(base);
        const names = Object.keys(header).filter((k) => k !== "__metadata__");
        const name = names[i % names.length];
        const [begin, end] = header[name].data_offsets as [number, number];
        const index = (i >> 3) % ((end - begin) / 4);
        const bytes = setTensorValues(base, name, (j) =>
          j === index
            ? new Float32Array(new Uint32Array([bits]).buffer)[0]
            : new Float32Array(data.buffer, data.byteOffset + begin, (end - begin) / 4)[j],
        );
        expect(decodeOutcome(bytes)).toBe("value_out_of_range");
        expect(() => decodeAdapter(bytes, OPTS)).toThrow(
          expect.objectContaining({ details: expect.objectContaining({ tensor: name, index }) }),
        );
      }),
      fcOptions(300),
    );
  });

  it("any key of a valid header written twice → duplicate_key", () => {
    fc.assert(
      fc.property(fc.constantFrom(...BASES), fc.nat(), (base, i) => {
        const { header, data } = splitFile(base);
        const text = JSON.stringify(header);
        const keys = [...text.matchAll(/[{,]("(?:[^"\\]|\\.)*"):/g)];
        const k = keys[i % keys.length];
        const at = k.index + 1;
        const bytes = rawFile(`${text.slice(0, at)}${k[1]}:"first",${text.slice(at)}`, data);
        expect(decodeOutcome(bytes)).toBe("duplicate_key");
      }),
      fcOptions(300),
    );
  });
});

// ---- 2. no allocation because a header said so ------------------------------------------------

describe("headers that claim huge sizes fail fast without allocating", () => {
  /** Runs `fn` (which must throw code `code`) and returns the array-buffer growth in bytes. */
  function allocationOf(fn: () => unknown, code: string): number {
    const before = process.memoryUsage().arrayBuffers;
    let caught: unknown;
    try {
      fn();
    } catch (e) {
      caught = e;
    }
    const grew = process.memoryUsage().arrayBuffers - before;
    expect(caught).toBeInstanceOf(SktError);
    expect((caught as SktError).code).toBe(code);
    return grew;
  }

  const base = BASES[0];
  const { header, data } = splitFile(base);

  it("a 2^50-byte header length", () => {
    const bytes = base.slice();
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 50n, true);
    expect(allocationOf(() => decodeAdapter(bytes, OPTS), "header_length_out_of_bounds")).toBeLessThan(MIB);
    expect(allocationOf(() => peekMetadata(bytes), "header_length_out_of_bounds")).toBeLessThan(MIB);
  });

  it("a header length of 2^64-1 and one just over the header cap inside a long enough file", () => {
    const bytes = base.slice();
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    expect(allocationOf(() => decodeAdapter(bytes, OPTS), "header_length_out_of_bounds")).toBeLessThan(MIB);
    const long = new Uint8Array(MAX_HEADER_BYTES + 1024);
    new DataView(long.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
    expect(allocationOf(() => decodeAdapter(long, OPTS), "header_length_out_of_bounds")).toBeLessThan(MIB);
  });

  it("a tensor claiming 2^40 elements (shape and offsets)", () => {
    const h = structuredClone(header);
    h["proj.weight"].shape = [2 ** 20, 2 ** 20];
    h["proj.weight"].data_offsets = [h["proj.weight"].data_offsets[0], h["proj.weight"].data_offsets[0] + 4 * 2 ** 40];
    const bytes = rawFile(h, data);
    expect(allocationOf(() => decodeAdapter(bytes, OPTS), "shape_mismatch")).toBeLessThan(MIB);
    // Right shape, offsets claiming 2^42 bytes.
    const h2 = structuredClone(header);
    h2["proj.weight"].data_offsets = [0, 4 * 2 ** 40];
    expect(allocationOf(() => decodeAdapter(rawFile(h2, data), OPTS), "offsets_out_of_bounds")).toBeLessThan(MIB);
  });

  it("metadata implying 2^40 parameters (huge prompt_length, 6·10^4 labels)", () => {
    const h = structuredClone(header);
    h.__metadata__.prompt_length = String(2 ** 40);
    expect(allocationOf(() => decodeAdapter(rawFile(h, data), OPTS), "bad_metadata")).toBeLessThan(MIB);
    const h2 = structuredClone(header);
    h2.__metadata__.labels = JSON.stringify(Array.from({ length: 60_000 }, (_, i) => `l${i}`));
    const manyLabels = rawFile(h2, data); // ~0.7 MB of header, allocated before the measurement
    expect(allocationOf(() => decodeAdapter(manyLabels, OPTS), "too_many_parameters")).toBeLessThan(MIB);
  });

  it("a file over the byte limit is refused before its header is read", () => {
    const big = new Uint8Array(17 * MIB);
    expect(allocationOf(() => decodeAdapter(big, { ...OPTS, maxBytes: 16 * MIB }), "file_too_large")).toBeLessThan(MIB);
  });
});

// ---- 3. through the registry and the store ----------------------------------------------------

describe("rejected uploads through the real engine leave nothing behind", () => {
  let engine: Engine;
  let root: string;
  let store: AdapterStore;
  const TASK = "fuzzed";

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "skt-rel-upload-"));
    store = new AdapterStore(path.join(root, "adapters"));
    engine = await Engine.create({
      modelsDir: MODELS_DIR,
      adaptersDir: path.join(root, "adapters"),
      store,
      threads: 1,
      device: "cpu",
      maxBatchSize: 32,
      maxPaddingRatio: 0.25,
      maxBatchTokens: 4096,
      maxWaitMs: 2,
      queueSize: 1024,
      cacheBytes: 64 * MIB,
      maxAdapterParams: 1_000_000,
      maxUploadBytes: 16 * MIB,
      semanticCache: true,
      requestTimeoutMs: 60_000,
    });
    await engine.upload(TASK, servableAdapterBytes(engine.assets, { task: TASK, seed: 1, headBias: [20, -20] }));
  });
  afterAll(async () => {
    await engine?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("mutated servable adapters: rejected → store, versions, current and answers unchanged; accepted → exactly one new version", async () => {
    const assets = engine.assets;
    const valid = servableAdapterBytes(assets, { task: TASK, seed: 2, headBias: [-20, 20] });
    const other = servableAdapterBytes(assets, { task: "another-task", seed: 3 });
    const { header, data } = splitFile(valid);
    // Valid files that only the registry can refuse: wrong prompt_length for this tokenizer (with
    // matching shapes), another backbone's fingerprint, another task's metadata.
    const special = [
      (() => {
        const f = makeAdapter({ promptLength: 3 });
        f.metadata = { ...f.metadata, task: TASK, backboneFingerprint: assets.fingerprint, maxLength: 64 };
        return encodeAdapter(f, assets.dims);
      })(),
      rawFile({ ...header, __metadata__: { ...header.__metadata__, backbone_fingerprint: "f".repeat(64) } }, data),
      other,
      // Issue 18: the values that gave null scores, and labels an ordinary object swallows.
      setTensorValues(valid, "proj.bias", () => 1e38),
      setTensorValues(valid, "pool.bias", (i) => (i % 2 ? -3e38 : 3e38)),
      servableAdapterBytes(assets, { task: TASK, seed: 4, labels: ["__proto__", "constructor"] }),
      servableAdapterBytes(assets, { task: TASK, seed: 5, labels: ["toString", "__proto__", "valueOf"] }),
    ];
    const input = fc.oneof(
      {
        weight: 6,
        arbitrary: fc
          .tuple(fc.array(headerOp, { maxLength: 3 }), fc.array(byteOp, { maxLength: 2 }))
          .map(([hops, bops]) => {
            let bytes = valid;
            if (hops.length) {
              const parts = splitFile(valid);
              for (const op of hops) op(parts.header);
              bytes = rawFile(parts.header, parts.data);
            }
            for (const op of bops) bytes = op(bytes);
            return bytes;
          }),
      },
      { weight: 1, arbitrary: fc.constantFrom(...special) },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 256 }) },
    );

    await fc.assert(
      fc.asyncProperty(input, async (bytes) => {
        const treeBefore = await listTree(root);
        const versionsBefore = await store.listVersions(TASK);
        const currentBefore = engine.registry.currentVersion(TASK);
        let outcome: "ok" | SktError;
        try {
          await engine.upload(TASK, bytes);
          outcome = "ok";
        } catch (e) {
          if (!(e instanceof SktError))
            throw new Error(`upload threw a ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`, {
              cause: e,
            });
          outcome = e;
        }
        if (outcome === "ok") {
          tally.uploads.accepted++;
          // One new version on top; the store's retention (20 per task) may drop the oldest ones.
          const want = [...versionsBefore.map((v) => v.version), currentBefore! + 1].slice(
            -DEFAULT_MAX_VERSIONS_PER_TASK,
          );
          expect((await store.listVersions(TASK)).map((v) => v.version)).toEqual(want);
          expect(engine.registry.currentVersion(TASK)).toBe(currentBefore! + 1);
          expect(await store.current(TASK)).toBe(currentBefore! + 1);
        } else {
          tally.uploads.rejected++;
          tally.uploads.codes.set(outcome.code, (tally.uploads.codes.get(outcome.code) ?? 0) + 1);
          expect(outcome.kind).toBe("invalid_adapter");
          expect([...ADAPTER_ERROR_CODES, ...REGISTRY_CODES]).toContain(outcome.code);
          expect(await listTree(root)).toEqual(treeBefore);
          expect(await store.listVersions(TASK)).toEqual(versionsBefore);
          expect(await store.current(TASK)).toBe(currentBefore);
          expect(engine.registry.currentVersion(TASK)).toBe(currentBefore);
          expect(engine.hasTask("another-task")).toBe(false);
        }
        // Whatever happened, the current version answers, completely prepared.
        const r = await engine.classify({ task: TASK, texts: ["still serving"] });
        expect(r.adapterVersion).toBe(engine.registry.currentVersion(TASK));
        expect(Number.isFinite(r.predictions[0].score)).toBe(true);
        // Every label has a finite score, whatever it is called.
        const labels = (await engine.registry.metadata(TASK, r.adapterVersion)).labels;
        expect(Object.keys(r.predictions[0].scores!).sort()).toEqual([...labels].sort());
        expect(Object.values(r.predictions[0].scores!).every(Number.isFinite)).toBe(true);
      }),
      fcOptions(200),
    );
    expect(tally.uploads.rejected).toBeGreaterThan(0);
  });
});
