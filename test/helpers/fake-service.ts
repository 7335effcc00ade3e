/**
 * An in-memory `InferenceService` for HTTP tests: deterministic predictions, versioned adapters,
 * and switches to make any call fail with a chosen error or hang until aborted.
 *
 * "Adapter files" for the fake are UTF-8 JSON (`FakeAdapterSpec`), so a test can upload a version
 * with different labels and see `/classify` answer from it. Anything that is not a JSON object is
 * rejected as `invalid_adapter`, like a broken safetensors file would be.
 */
import type { AdapterMetadata } from "../../src/adapters/format.js";
import type { StoreHealth } from "../../src/adapters/store/interface.js";
import type { DeviceInfo } from "../../src/backbone/device.js";
import type {
  EmbedRequest,
  EmbedResult,
  EvaluateRequest,
  AdapterDetails,
  ClassifyRequest,
  ClassifyResult,
  InferenceService,
  PageRequest,
  Prediction,
  ProblemType,
  TaskInfo,
  TaskPage,
  UploadOptions,
  UploadResult,
  TrafficSplit,
  TrafficState,
} from "../../src/engine/service.js";
import { TrafficTable, validateSplit } from "../../src/adapters/traffic.js";
import { SktError, type ErrorKind } from "../../src/errors.js";

export interface FakeAdapterSpec {
  labels?: string[];
  problemType?: ProblemType;
  /** Pair task: requires `pairs`; plain tasks refuse them. */
  textPair?: boolean;
  /** Longest input in (whitespace) tokens; longer inputs are truncated. Default 16. */
  maxLength?: number;
  variant?: "prompt" | "prefix";
  /** Single-label: a text containing one of these words is classified as its label (gate tests set
   * how good a version is); other texts get the hash-based label. */
  rules?: Record<string, string>;
}

interface FakeVersion {
  version: number;
  spec: Required<FakeAdapterSpec>;
  bytes: number;
  createdAt: string;
}

interface FakeTask {
  versions: FakeVersion[];
  current: number | null;
  /** Versions uploaded with activate=false and not made current since. */
  staged: Set<number>;
  /** Documents (eval set, gate reports) by name. */
  documents: Map<string, Uint8Array>;
}

export type FakeOp =
  | "classify"
  | "embed"
  | "listTasks"
  | "adapterDetails"
  | "upload"
  | "rollback"
  | "deleteTask"
  | "evaluate"
  | "activate"
  | "setTraffic";

export interface FakeServiceOptions {
  ready?: boolean;
  /** Initial tasks (version 1 each). Default: sst2 (2 labels), stsb (regression), mnli (pair). */
  tasks?: Record<string, FakeAdapterSpec>;
}

export const DEFAULT_FAKE_TASKS: Record<string, FakeAdapterSpec> = {
  sst2: { labels: ["negative", "positive"] },
  stsb: { problemType: "regression", labels: ["score"] },
  mnli: { labels: ["entailment", "neutral", "contradiction"], textPair: true },
};

function fill(spec: FakeAdapterSpec): Required<FakeAdapterSpec> {
  const problemType = spec.problemType ?? "single_label_classification";
  return {
    labels: spec.labels ?? (problemType === "regression" ? ["score"] : ["negative", "positive"]),
    problemType,
    textPair: spec.textPair ?? false,
    maxLength: spec.maxLength ?? 16,
    variant: spec.variant ?? "prompt",
    rules: spec.rules ?? {},
  };
}

function newFakeTask(): FakeTask {
  return { versions: [], current: null, staged: new Set<number>(), documents: new Map<string, Uint8Array>() };
}

/** Deterministic predictions of a fake version (its rules first, else from a hash of text and version). */
function predict(v: FakeVersion, texts: string[], pairs?: string[]): Prediction[] {
  return texts.map((text, i): Prediction => {
    const input = pairs ? `${text} ${pairs[i]}` : text;
    const words = input.split(/\s+/).filter(Boolean).length;
    const truncated = words > v.spec.maxLength;
    const tokens = truncated ? v.spec.maxLength : words;
    const h = hash(`${input}#${v.version}`);
    if (v.spec.problemType === "regression") return { value: (h % 500) / 100, tokens, truncated };
    const ruled = Object.entries(v.spec.rules).find(([word]) => input.split(/\s+/).includes(word))?.[1];
    const logits = v.spec.labels.map((l, j) =>
      ruled !== undefined ? (l === ruled ? 9 : 0) : ((h >>> (j * 3)) & 7) / 2,
    );
    const sig = v.spec.problemType === "multi_label_classification";
    const z = logits.reduce((a, x) => a + Math.exp(x), 0);
    const probs = logits.map((x) => (sig ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / z));
    let best = 0;
    probs.forEach((p, j) => {
      if (p > probs[best]) best = j;
    });
    const scores = Object.fromEntries(v.spec.labels.map((l, j) => [l, probs[j]]));
    return { label: v.spec.labels[best], score: probs[best], scores, tokens, truncated };
  });
}

/** FNV-1a, so predictions depend only on (text, version). */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function encodeFakeAdapter(spec: FakeAdapterSpec): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(spec));
}

export class FakeInferenceService implements InferenceService {
  ready: boolean;
  closed = false;
  closeCalls = 0;
  /** Every classify request as received (deadline, signal, pairs included). */
  readonly classifyCalls: ClassifyRequest[] = [];
  /** Every embed request as received. */
  readonly embedCalls: EmbedRequest[] = [];
  /** classify waits until its signal aborts (then rejects with the abort reason). */
  hang = false;
  /** Resolves each time a classify call starts (for tests that must act mid-request). */
  onClassifyStart: ((req: ClassifyRequest) => void) | undefined;
  /** What deviceInfo() reports. */
  device: DeviceInfo | null = { requested: "cpu", device: "cpu", adapter: null, reason: "SKT_DEVICE=cpu" };
  /** What storeHealth() reports. */
  store: StoreHealth | null = { backend: "filesystem", state: "ok", reason: null };

  private readonly tasks = new Map<string, FakeTask>();
  /** Splits are validated and kept as the engine does; the fake's classify does not route them. */
  private readonly traffic = new TrafficTable();
  private readonly failures = new Map<FakeOp, unknown>();
  private clock = Date.parse("2025-01-01T00:00:00Z");

  constructor(opts: FakeServiceOptions = {}) {
    this.ready = opts.ready ?? true;
    for (const [task, spec] of Object.entries(opts.tasks ?? DEFAULT_FAKE_TASKS)) {
      this.addVersion(task, fill(spec), 1);
    }
  }

  deviceInfo(): DeviceInfo | null {
    return this.device;
  }

  storeHealth(): StoreHealth | null {
    return this.store;
  }

  /** Make the next call of `op` throw `error` (once). */
  failNext(op: FakeOp, error: unknown): void {
    this.failures.set(op, error);
  }

  /** Shorthand: the next `op` throws `new SktError(kind, code ?? kind, ...)`. */
  failNextWith(op: FakeOp, kind: ErrorKind, code: string = kind): void {
    this.failNext(op, new SktError(kind, code, `fake ${op} failed with ${kind}`));
  }

  private maybeFail(op: FakeOp): void {
    if (!this.failures.has(op)) return;
    const e = this.failures.get(op);
    this.failures.delete(op);
    throw e;
  }

  private addVersion(task: string, spec: Required<FakeAdapterSpec>, bytes: number, activate = true): FakeVersion {
    const t = this.tasks.get(task) ?? newFakeTask();
    const version = (t.versions.at(-1)?.version ?? 0) + 1;
    const v: FakeVersion = { version, spec, bytes, createdAt: new Date((this.clock += 1000)).toISOString() };
    t.versions.push(v);
    if (activate) t.current = version;
    else t.staged.add(version);
    this.tasks.set(task, t);
    return v;
  }

  private currentVersion(task: string): FakeVersion {
    const t = this.tasks.get(task);
    const v = t?.versions.find((x) => x.version === t.current);
    if (!v) throw new SktError("not_found", "unknown_task", `Unknown task "${task}".`, { task });
    return v;
  }

  private info(task: string, v: FakeVersion): TaskInfo {
    return {
      task,
      version: v.version,
      variant: v.spec.variant,
      pooling: false,
      labels: v.spec.labels,
      problemType: v.spec.problemType,
      promptText: `Classify for ${task}:`,
      maxLength: v.spec.maxLength,
      parameters: 1000 + v.spec.labels.length,
    };
  }

  private metadata(task: string, v: FakeVersion): AdapterMetadata {
    return {
      task,
      variant: v.spec.variant,
      pooling: false,
      promptText: `Classify for ${task}:`,
      promptLength: 3,
      labels: v.spec.labels,
      problemType: v.spec.problemType,
      backbone: "fake",
      backboneFingerprint: "0".repeat(64),
      maxLength: v.spec.maxLength,
      textPair: v.spec.textPair,
    };
  }

  isReady(): boolean {
    return this.ready && !this.closed;
  }

  hasTask(task: string): boolean {
    return this.tasks.get(task)?.current != null;
  }

  /** A 4-wide vector per text from its words (normalised on request), so routes can be checked end to end. */
  async embed(req: EmbedRequest): Promise<EmbedResult> {
    this.embedCalls.push(req);
    this.maybeFail("embed");
    if (!this.isReady()) throw new SktError("not_ready", "not_ready", "fake engine not ready");
    const embeddings = req.texts.map((t) => {
      const h = hash(t);
      const v = Float32Array.from([1, (h & 0xff) / 255, ((h >>> 8) & 0xff) / 255, t.length]);
      const norm = Math.hypot(...v);
      return req.normalize ? v.map((x) => x / norm) : v;
    });
    return { model: "fake", embeddings, tokens: req.texts.map((t) => t.split(/\s+/).filter(Boolean).length + 2) };
  }

  async classify(req: ClassifyRequest): Promise<ClassifyResult> {
    this.classifyCalls.push(req);
    this.onClassifyStart?.(req);
    this.maybeFail("classify");
    if (!this.isReady()) throw new SktError("not_ready", "not_ready", "fake engine not ready");
    const v = this.currentVersion(req.task);
    if (req.signal?.aborted) throw req.signal.reason;
    if (this.hang) {
      await new Promise<never>((_, reject) => {
        const fail = () =>
          reject((req.signal?.reason as Error | undefined) ?? new SktError("timeout", "timeout", "aborted"));
        if (req.signal?.aborted) fail();
        req.signal?.addEventListener("abort", fail, { once: true });
      });
    }
    if (req.deadline !== undefined && Date.now() > req.deadline) {
      throw new SktError("timeout", "timeout", "deadline passed");
    }
    if (v.spec.textPair && !req.pairs) {
      throw new SktError("bad_request", "missing_pair", `Task "${req.task}" needs text_pair/text_pairs.`);
    }
    if (!v.spec.textPair && req.pairs) {
      throw new SktError("bad_request", "unexpected_pair", `Task "${req.task}" takes single texts.`);
    }
    const predictions = predict(v, req.texts, req.pairs);
    return { task: req.task, adapterVersion: v.version, predictions };
  }

  /** Naive paging: filter, sort, slice (the real index's binary search is tested against this shape). */
  async listTasks(page: PageRequest): Promise<TaskPage> {
    this.maybeFail("listTasks");
    const names = [...this.tasks.keys()].filter((t) => this.hasTask(t) && (page.match?.(t) ?? true)).sort();
    const after = names.filter((t) => page.after === undefined || t > page.after);
    const shown = after.slice(0, page.limit);
    return {
      tasks: shown.map((t) => {
        const info = this.info(t, this.currentVersion(t));
        return { ...info, labelCount: info.labels.length, truncated: false };
      }),
      total: names.length,
      last: after.length > page.limit ? shown[shown.length - 1] : null,
    };
  }

  async adapterDetails(task: string): Promise<AdapterDetails> {
    this.maybeFail("adapterDetails");
    const t = this.tasks.get(task);
    if (!t || t.versions.length === 0)
      throw new SktError("not_found", "unknown_task", `Unknown task "${task}".`, { task });
    return {
      task,
      current: t.current,
      versions: t.versions.map((v) => ({
        version: v.version,
        current: v.version === t.current,
        staged: t.staged.has(v.version),
        bytes: v.bytes,
        createdAt: v.createdAt,
        metadata: this.metadata(task, v),
      })),
    };
  }

  async upload(task: string, bytes: Uint8Array, options: UploadOptions = {}): Promise<UploadResult> {
    this.maybeFail("upload");
    let spec: unknown;
    try {
      spec = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch {
      throw new SktError("invalid_adapter", "header_not_json", "Not a fake adapter (JSON expected).");
    }
    if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
      throw new SktError("invalid_adapter", "header_not_object", "A fake adapter is a JSON object.");
    }
    const v = this.addVersion(task, fill(spec), bytes.byteLength, options.activate ?? true);
    return { ...this.info(task, v), current: this.tasks.get(task)!.current };
  }

  async rollback(task: string, version?: number): Promise<TaskInfo> {
    this.maybeFail("rollback");
    return this.moveCurrent(task, version);
  }

  async activate(task: string, version: number, options: { expectCurrent?: number | null } = {}): Promise<TaskInfo> {
    this.maybeFail("activate");
    const cur = this.tasks.get(task)?.current ?? null;
    if (options.expectCurrent !== undefined && options.expectCurrent !== cur) {
      throw new SktError("conflict", "current_changed", `The current version of "${task}" changed.`);
    }
    return this.moveCurrent(task, version);
  }

  private moveCurrent(task: string, version?: number): TaskInfo {
    const t = this.tasks.get(task);
    if (!t || (t.current === null && version === undefined)) {
      throw new SktError("not_found", "unknown_task", `Unknown task "${task}".`);
    }
    const current = t.current;
    let target: FakeVersion | undefined;
    if (version !== undefined) {
      target = t.versions.find((v) => v.version === version);
      if (!target) throw new SktError("not_found", "unknown_version", `Task "${task}" has no version ${version}.`);
      if (target.version === current) {
        throw new SktError("conflict", "version_is_current", `Version ${version} is already current.`);
      }
    } else {
      target = t.versions.filter((v) => current !== null && v.version < current).at(-1);
      if (!target) throw new SktError("conflict", "no_previous_version", `Task "${task}" has no earlier version.`);
    }
    t.current = target.version;
    t.staged.delete(target.version);
    this.traffic.removeVersion(task, target.version);
    return this.info(task, target);
  }

  async deleteVersion(task: string, version: number): Promise<void> {
    const t = this.tasks.get(task);
    if (!t?.versions.some((v) => v.version === version)) {
      throw new SktError("not_found", "version_not_found", `Task "${task}" has no version ${version}.`);
    }
    if (t.current === version) throw new SktError("conflict", "version_is_current", `v${version} is current.`);
    t.versions = t.versions.filter((v) => v.version !== version);
    t.staged.delete(version);
  }

  /** Every evaluate call as received. */
  readonly evaluateCalls: EvaluateRequest[] = [];
  /** When set, each evaluate call waits for this before it runs (tests act mid-evaluation). */
  evaluateGate: Promise<void> | null = null;

  async evaluate(req: EvaluateRequest): Promise<Prediction[]> {
    this.evaluateCalls.push(req);
    if (this.evaluateGate) await this.evaluateGate;
    req.signal?.throwIfAborted();
    this.maybeFail("evaluate");
    const v = this.tasks.get(req.task)?.versions.find((x) => x.version === req.version);
    if (!v) throw new SktError("not_found", "version_not_found", `Task "${req.task}" has no version ${req.version}.`);
    const out = predict(v, req.texts, req.pairs);
    req.onProgress?.(out.length);
    return out;
  }

  async readDocument(task: string, name: string): Promise<Uint8Array | null> {
    return this.tasks.get(task)?.documents.get(name) ?? null;
  }

  async writeDocument(task: string, name: string, bytes: Uint8Array): Promise<void> {
    const t = this.tasks.get(task) ?? newFakeTask();
    t.documents.set(name, bytes);
    this.tasks.set(task, t);
  }

  async deleteDocument(task: string, name: string): Promise<boolean> {
    return this.tasks.get(task)?.documents.delete(name) ?? false;
  }

  async deleteTask(task: string): Promise<void> {
    this.maybeFail("deleteTask");
    // Like the engine: a task is known by its versions (documents alone do not make one).
    if (!this.tasks.get(task)?.versions.length || !this.tasks.delete(task)) {
      throw new SktError("not_found", "unknown_task", `Unknown task "${task}".`);
    }
    this.traffic.delete(task);
  }

  async trafficState(task: string): Promise<TrafficState> {
    return this.traffic.state(task, this.currentVersion(task).version);
  }

  async setTraffic(task: string, split: TrafficSplit): Promise<TrafficState> {
    this.maybeFail("setTraffic");
    const current = this.currentVersion(task).version;
    validateSplit(
      task,
      split,
      current,
      this.tasks.get(task)!.versions.map((v) => v.version),
    );
    this.traffic.set(task, split);
    return this.traffic.state(task, this.currentVersion(task).version);
  }

  async close(): Promise<void> {
    this.closeCalls++;
    this.closed = true;
  }
}
