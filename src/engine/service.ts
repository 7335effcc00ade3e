/**
 * What the HTTP layer (and the CLI) may ask of the engine. The server depends only on this
 * interface, so routes can be tested against a fake and the engine can change behind it.
 */
import type { StoreHealth } from "../adapters/store/interface.js";
import type { AdapterMetadata } from "../adapters/format.js";
import type { ProblemType } from "../adapters/spec.js";
import type { TrafficSplit, TrafficState } from "../adapters/traffic.js";

export type { TrafficSplit, TrafficState } from "../adapters/traffic.js";
import type { DeviceInfo } from "../backbone/device.js";

export type { ProblemType };

export interface ClassifyRequest {
  task: string;
  texts: string[];
  /** Second segments for pair tasks; same length as `texts` when given. */
  pairs?: string[];
  /** Absolute deadline (ms since epoch); the engine rejects with kind "timeout" when it passes. */
  deadline?: number;
  signal?: AbortSignal;
}

export interface Prediction {
  /** Classification: the top label and its probability. */
  label?: string;
  score?: number;
  /** Classification: every label's probability (softmax or sigmoid by problem type). */
  scores?: Record<string, number>;
  /** Regression: the raw output. */
  value?: number;
  /** Text tokens actually used, and whether the input was cut to fit the adapter's max length. */
  tokens: number;
  truncated: boolean;
}

export interface EmbedRequest {
  texts: string[];
  /** L2-normalise each vector (default false: the backbone's raw vector). */
  normalize?: boolean;
  deadline?: number;
  signal?: AbortSignal;
}

export interface EmbedResult {
  /** The backbone's name ("use-lite" or the model folder's name). */
  model: string;
  embeddings: Float32Array[];
  /** Tokens each text ran with (special tokens included). */
  tokens: number[];
}

export interface ClassifyResult {
  task: string;
  adapterVersion: number;
  predictions: Prediction[];
}

export interface TaskInfo {
  task: string;
  version: number;
  variant: "prompt" | "prefix";
  pooling: boolean;
  labels: string[];
  problemType: ProblemType;
  promptText: string;
  maxLength: number;
  parameters: number;
}

/** A task as listings show it: long fields cut (see adapters/summary.ts). */
export interface TaskListing extends TaskInfo {
  /** Labels in all; `labels` may list only the first ones. */
  labelCount: number;
  /** True when `promptText` or `labels` was cut; the admin view has the full values. */
  truncated: boolean;
}

export interface PageRequest {
  /** Most tasks on the page. */
  limit: number;
  /** List the tasks whose names sort after this one (the previous page's last). */
  after?: string;
  /** Only tasks whose names pass this (a scoped admin token's glob); `total` then counts those. */
  match?: (task: string) => boolean;
}

export interface TaskPage {
  tasks: TaskListing[];
  /** Tasks served in all. */
  total: number;
  /** The last task of this page when more follow (the next page's `after`), else null. */
  last: string | null;
}

export interface AdapterVersionInfo {
  version: number;
  current: boolean;
  /** Uploaded inactive (or by an evaluation gate) and not made current since: kept from pruning. */
  staged: boolean;
  bytes: number;
  createdAt: string;
  metadata: AdapterMetadata;
}

export interface AdapterDetails {
  task: string;
  current: number | null;
  versions: AdapterVersionInfo[];
}

export interface UploadOptions {
  /** false: store and prepare the version without making it current (default true). */
  activate?: boolean;
}

/** An uploaded version, and the task's current version after the upload (the new one when activated). */
export interface UploadResult extends TaskInfo {
  current: number | null;
}

export interface EvaluateRequest {
  task: string;
  /** Any stored version, current or not. */
  version: number;
  texts: string[];
  pairs?: string[];
  /** Stops between chunks (rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Called after each chunk with the rows done so far. */
  onProgress?: (done: number) => void;
}

export interface InferenceService {
  /** Backbone loaded and inference worker alive. */
  isReady(): boolean;
  /** Where the backbone runs (null until it has loaded). */
  deviceInfo(): DeviceInfo | null;
  /** The adapter store's state (a shared store can be degraded while its database is away); null until loaded. */
  storeHealth?(): StoreHealth | null;
  classify(req: ClassifyRequest): Promise<ClassifyResult>;
  /** The backbone's own sentence vector of each text (no adapter). */
  embed(req: EmbedRequest): Promise<EmbedResult>;
  /** One page of the served tasks in name order, from the task index (no adapter file is read). */
  listTasks(page: PageRequest): Promise<TaskPage>;
  /** Whether `task` has a current version (used to label metrics without unbounded cardinality). */
  hasTask(task: string): boolean;
  adapterDetails(task: string): Promise<AdapterDetails>;
  /** Validate → prepare → probe → write a new version atomically → make it current (unless `activate: false`). */
  upload(task: string, bytes: Uint8Array, options?: UploadOptions): Promise<UploadResult>;
  /** Make a stored `version` (default: the one before the current) current; also serves "activate".
   * Naming the current version is a 409 `version_is_current`. */
  rollback(task: string, version?: number): Promise<TaskInfo>;
  deleteTask(task: string): Promise<void>;
  /** Make a stored version current; with `expectCurrent`, only if the current version is still that
   * one (else 409 `current_changed`). Also activates a task whose versions are all inactive. */
  activate(task: string, version: number, options?: { expectCurrent?: number | null }): Promise<TaskInfo>;
  /** Remove one stored version that is not current. */
  deleteVersion(task: string, version: number): Promise<void>;
  /**
   * Runs rows through a stored version (current or not) via the serving queue, a few at a time, so
   * live requests are never queued behind a whole evaluation set.
   */
  evaluate(req: EvaluateRequest): Promise<Prediction[]>;
  /** Small JSON documents kept next to the task's versions (eval set, gate reports); removed with the task. */
  readDocument(task: string, name: string): Promise<Uint8Array | null>;
  writeDocument(task: string, name: string, bytes: Uint8Array): Promise<void>;
  deleteDocument(task: string, name: string): Promise<boolean>;
  /** The task's canary/shadow split and its counts (adapters/traffic.ts). */
  trafficState(task: string): Promise<TrafficState>;
  /** Sets the task's canary and/or shadow ({} clears both); validated, prepared and persisted first. */
  setTraffic(task: string, split: TrafficSplit): Promise<TrafficState>;
  /** Stop taking work, finish what is queued, release the worker. */
  close(): Promise<void>;
}
