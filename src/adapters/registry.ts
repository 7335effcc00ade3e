/**
 * The registry of servable adapters: which version of each task is current (the store's task
 * index), and a byte-budgeted LRU cache of prepared adapters (semantic pass + F done). Start-up only
 * reads the index; a version is prepared at first use, once however many requests wait
 * (single-flight), or by an optional background warm-up. Uploads and rollbacks prepare the new
 * version completely before the pointer moves, so requests never see a half-ready adapter, and
 * requests that already took a prepared object keep it (hot swap).
 *
 * Memory: per task not in the cache, only its index entry (summary.ts); per cached version, what
 * the cache's byte budget counts. A task's other versions leave the cache when its pointer moves.
 */
import { LRUCache } from "lru-cache";
import type { BackboneDims } from "../backbone/dims.js";
import type { BackboneTokenizer } from "../backbone/tokenizer.js";
import { SktError, isSktError } from "../errors.js";
import type { SktMetrics } from "../metrics.js";
import { decodeAdapter, peekMetadata, type AdapterFile, type AdapterMetadata } from "./format.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { prepareAdapter, type PreparedAdapter } from "./prepared.js";
import type { StoredVersion } from "./store.js";
import type { AdapterStore, StoreHealth } from "./store/interface.js";
import { packSummary, summarize, unpackSummary, type TaskSummary } from "./summary.js";
import { validateTaskName } from "./task-name.js";
import {
  TrafficTable,
  splitVersions,
  validateSplit,
  type AnsweringRole,
  type TrafficSplit,
  type TrafficState,
} from "./traffic.js";

export interface RegistryOptions {
  /** The adapter files and their task index (CURRENT pointers). */
  store: AdapterStore;
  /** The backbone's sizes: every adapter is validated and prepared against them. */
  dims: BackboneDims;
  /** The backbone's fingerprint; an adapter trained on another backbone is refused. */
  fingerprint: string;
  /** Tokenizes prompt texts (the prompt-length check and the semantic pass's input). */
  tokenizer: BackboneTokenizer;
  /** Backbone last hidden state of the prompt's token ids, [L, H_out]. */
  semanticPass: (promptIds: number[]) => Promise<Float32Array>;
  /** Byte budget of the prepared-adapter cache (SKT_CACHE_BYTES). */
  cacheBytes: number;
  /** Most trainable parameters an adapter may have (SKT_MAX_ADAPTER_PARAMS). */
  maxParameters: number;
  /** Largest adapter file (SKT_MAX_UPLOAD_BYTES); also bounds what is read from the store. */
  maxUploadBytes: number;
  /**
   * Runs a prepared adapter once (the engine's probe pass) and throws when its outputs are not
   * finite: an upload or rollback must not make such a version current.
   */
  probe?: (adapter: PreparedAdapter) => Promise<void>;
  /** See DecodeOptions.maxAbsValue (tests lift the bound to reach the probe). */
  maxAbsValue?: number;
  /** Cache, load and semantic-pass metrics; none recorded when absent. */
  metrics?: SktMetrics;
  /** Where start-up, warm-up and unservable-adapter events are reported. */
  log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

/** One task in a listing: its current version and its summary. */
export interface TaskListing extends TaskSummary {
  task: string;
  version: number;
}

/** What answers one request (see traffic.ts): the prepared version and its role, and the shadow if any. */
export interface TrafficRoute {
  adapter: PreparedAdapter;
  role: AnsweringRole;
  shadow: PreparedAdapter | null;
}

export interface TaskPage {
  tasks: TaskListing[];
  /** Tasks served in all. */
  total: number;
  /** The last task name on this page when more follow, else null. */
  last: string | null;
}

const taskOfKey = (key: string) => key.slice(0, key.lastIndexOf("@v"));

export class AdapterRegistry {
  private readonly loading = new Map<string, Promise<PreparedAdapter>>();
  /** Serialises installs, rollbacks and deletes of one task (a second instance of the store's kind:
   * the store takes its own while these hold this one). */
  private readonly taskLocks = new KeyedMutex();
  private readonly cache: LRUCache<string, PreparedAdapter>;
  /** Current versions found unservable at first use, by key: answered at once until the pointer moves. */
  private readonly invalid = new Map<string, SktError>();
  /**
   * h_p by prompt token ids. The semantic pass depends only on the prompt, and many adapters share
   * one (every version of a task, often many tasks), so a reload after eviction or a new version
   * with the same prompt costs no backbone pass. Small: L × 512 floats per distinct prompt.
   */
  private readonly hiddenStates = new LRUCache<string, Float32Array>({ maxSize: 32 * 1024 * 1024, sizeCalculation: (a) => a.byteLength });
  private readonly pendingPasses = new Map<string, Promise<Float32Array>>();
  /** Canary and shadow splits; changed only under the task's lock, persisted in the store's TRAFFIC. */
  private readonly traffic = new TrafficTable();
  private trafficWrites: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: RegistryOptions) {
    this.cache = new LRUCache<string, PreparedAdapter>({
      maxSize: opts.cacheBytes,
      sizeCalculation: (a) => a.bytes,
      dispose: (_value, _key, reason) => {
        if (reason === "evict") opts.metrics?.cacheEvictions.inc();
        this.updateCacheGauges();
      },
    });
  }

  /** Opens the store's task index (no adapter is read or prepared here). */
  async init(): Promise<void> {
    const started = performance.now();
    const opened = await this.opts.store.open((task, bytes) => packSummary(summarize(peekMetadata(bytes, { maxBytes: this.opts.maxUploadBytes }), this.opts.dims)));
    if (opened.removedTempFiles.length) this.opts.log?.("warn", "removed leftover temp files from an interrupted write", { files: opened.removedTempFiles });
    this.opts.log?.("info", "task index read", { tasks: opened.tasks, readFromFiles: opened.reread, rebuilt: opened.rebuilt, ms: Math.round(performance.now() - started) });
    // A shared store reports other replicas' changes: prepare before the pointer moves, then drop the rest.
    this.opts.store.watch?.({
      holds: (task) => [...this.cache.keys()].some((key) => taskOfKey(key) === task),
      prepare: async (task, version, bytes) => this.prepare(this.decodeFor(task, bytes), version),
      applied: (task, version, prepared) => {
        this.forget(task);
        if (prepared && version !== null && this.currentVersion(task) === version) this.remember(prepared as PreparedAdapter);
      },
    });
    await this.loadTraffic();
  }

  /**
   * Restores the splits saved in TRAFFIC. A split that no longer applies (task gone, a version now
   * current or no longer stored) is dropped with a warning, the way a delete or rollback would have.
   */
  private async loadTraffic(): Promise<void> {
    const text = await this.opts.store.readTraffic();
    if (text === null) return;
    const { splits, problems } = TrafficTable.parse(text);
    for (const p of problems) this.opts.log?.("warn", "traffic split left out: TRAFFIC is malformed", { problem: p });
    let dropped = problems.length > 0;
    for (const [task, split] of splits) {
      const current = this.currentVersion(task);
      try {
        if (current === null) throw new SktError("not_found", "unknown_task", `task "${task}" is not served`);
        validateSplit(task, split, current, (await this.opts.store.listVersions(task)).map((v) => v.version));
        this.traffic.set(task, split);
      } catch (e) {
        dropped = true;
        this.opts.log?.("warn", "traffic split dropped at start-up: it no longer applies", { task, error: (e as Error).message });
      }
    }
    if (dropped) await this.saveTraffic().catch((e: unknown) => this.opts.log?.("warn", "could not rewrite TRAFFIC", { error: (e as Error).message }));
  }

  /** Writes every split to TRAFFIC; writes are chained so the last one holds the newest table. */
  private saveTraffic(): Promise<void> {
    const run = this.trafficWrites.then(() => this.opts.store.writeTraffic(this.traffic.serialize()));
    this.trafficWrites = run.catch(() => undefined);
    return run;
  }

  /**
   * After a split lost a version (it became current, or its file went), under the task's lock: save
   * the table (best effort: a stale entry is dropped again at start-up) and drop the metric series
   * of versions that no longer carry traffic.
   */
  private async splitShrank(task: string): Promise<void> {
    await this.saveTraffic().catch((e: unknown) => this.opts.log?.("warn", "could not save the traffic splits", { task, error: (e as Error).message }));
    await this.forgetTrafficSeries(task);
  }

  private async forgetTrafficSeries(task: string): Promise<void> {
    const split = this.traffic.get(task);
    const current = this.currentVersion(task);
    const keep = split ? [...splitVersions(split), ...(current === null ? [] : [current])] : [];
    await this.opts.metrics?.forgetTrafficSeries(task, keep);
  }

  /** Versions of `task` that a split names (kept in the cache and spared by pruning). */
  private routedVersions(task: string): number[] {
    const split = this.traffic.get(task);
    return split ? splitVersions(split) : [];
  }

  /** The split of `task` and its counts since it was set. */
  trafficState(task: string): TrafficState {
    validateTaskName(task);
    if (!this.hasTask(task)) throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"`);
    return this.traffic.state(task, this.currentVersion(task));
  }

  /**
   * Sets the canary and/or shadow of `task` (an empty split clears both). Each version must be
   * stored and not current, and is prepared and probed before the split applies, so no request
   * waits on it or meets a broken one; it must also take the same inputs and give the same kind of
   * output as the current version (pair or not, problem type), 422 `incompatible_version` otherwise.
   */
  async setTraffic(task: string, split: TrafficSplit): Promise<TrafficState> {
    validateTaskName(task);
    return this.taskLocks.run(task, async () => {
      const current = this.currentVersion(task);
      if (current === null) throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"`);
      validateSplit(task, split, current, (await this.opts.store.listVersions(task)).map((v) => v.version));
      const base = (await this.load(task, current)).metadata;
      const prepared: PreparedAdapter[] = [];
      for (const version of splitVersions(split)) {
        const adapter = await this.prepare(this.decodeFor(task, await this.opts.store.read(task, version)), version);
        await this.opts.probe?.(adapter);
        const meta = adapter.metadata;
        if (meta.textPair !== base.textPair || meta.problemType !== base.problemType) {
          throw new SktError(
            "unprocessable",
            "incompatible_version",
            `v${version} of task "${task}" (${meta.problemType}${meta.textPair ? ", text pairs" : ""}) cannot take the current v${current}'s traffic (${base.problemType}${base.textPair ? ", text pairs" : ""})`,
            { task, version },
          );
        }
        prepared.push(adapter);
      }
      const previous = this.traffic.get(task);
      this.traffic.set(task, split);
      try {
        await this.saveTraffic();
      } catch (e) {
        this.traffic.set(task, previous ?? {});
        throw e;
      }
      for (const adapter of prepared) this.remember(adapter);
      // Versions that left the split leave the cache and the metrics.
      for (const v of previous ? splitVersions(previous) : []) if (v !== current && !splitVersions(split).includes(v)) this.cache.delete(`${task}@v${v}`);
      await this.forgetTrafficSeries(task);
      return this.traffic.state(task, this.currentVersion(task));
    });
  }

  /**
   * The prepared version that answers a request of `rows` rows of `task` (the current one, or the
   * canary for its share), and the shadow that also scores it. A canary that fails to load because
   * the split changed meanwhile (deleted, now current) is replaced by the current version; a shadow
   * that fails to load is left out and counted as skipped: clients never see either fail.
   */
  async route(task: string, rows: number): Promise<TrafficRoute> {
    const pick = this.traffic.pick(task, rows);
    let adapter: PreparedAdapter | null = null;
    let role: TrafficRoute["role"] = "current";
    if (pick.canaryVersion !== null) {
      try {
        adapter = await this.load(task, pick.canaryVersion);
        role = "canary";
      } catch (e) {
        if (this.traffic.get(task)?.canary?.version === pick.canaryVersion) throw e;
      }
    }
    adapter ??= await this.acquire(task);
    let shadow: PreparedAdapter | null = null;
    if (pick.shadowVersion !== null && pick.shadowVersion !== adapter.version) {
      try {
        shadow = await this.load(task, pick.shadowVersion);
      } catch (e) {
        this.traffic.recordShadowSkipped(task, pick.shadowVersion, rows);
        this.opts.log?.("warn", "shadow version could not be loaded; rows not shadowed", { task, version: pick.shadowVersion, error: (e as Error).message });
      }
    }
    return { adapter, role, shadow };
  }

  /** Whether `task` has a canary or shadow (only then are per-version counts kept). */
  hasSplit(task: string): boolean {
    return this.traffic.get(task) !== undefined;
  }

  /** A request answered by `version` (for GET …/traffic's counts). */
  recordTrafficAnswer(task: string, version: number, role: AnsweringRole, rows: number): void {
    this.traffic.recordAnswer(task, version, role, rows);
  }

  /** Shadow rows compared with the current version's answers; `agreed` null when they have no label. */
  recordShadow(task: string, version: number, compared: number, agreed: number | null): TrafficState {
    this.traffic.recordShadow(task, version, compared, agreed);
    return this.traffic.state(task, this.currentVersion(task));
  }

  recordShadowSkipped(task: string, version: number, rows: number): void {
    this.traffic.recordShadowSkipped(task, version, rows);
  }

  /**
   * Prepares up to `count` tasks in the background, most recently used first (the cache's order at
   * the last clean shutdown), while the cache has room. Never throws: a bad adapter is reported as at
   * first use. `stopped` is checked between tasks so shutdown does not wait for it.
   */
  async warmUp(count: number, stopped: () => boolean = () => false): Promise<number> {
    if (count <= 0) return 0;
    const recent = (await this.opts.store.readRecent()).filter((t) => this.hasTask(t)).slice(0, count);
    let warmed = 0;
    for (const task of recent) {
      if (stopped() || (this.cache.calculatedSize ?? 0) >= this.opts.cacheBytes) break;
      try {
        await this.acquire(task);
        warmed++;
      } catch {
        // reported by load()
      }
    }
    this.opts.log?.("info", "warm-up done", { asked: count, known: recent.length, prepared: warmed });
    return warmed;
  }

  /** Remembers which tasks were in use (for the next start's warm-up) and compacts the index. */
  async close(): Promise<void> {
    const recent = [...new Set([...this.cache.keys()].map(taskOfKey))];
    await this.opts.store.writeRecent(recent).catch((e: unknown) => this.opts.log?.("warn", "could not write the recent-tasks list", { error: (e as Error).message }));
    await this.opts.store.close().catch((e: unknown) => this.opts.log?.("warn", "could not compact the task index", { error: (e as Error).message }));
  }

  /** The store's state: a filesystem store is always ok; a shared one is degraded while its database is away. */
  storeHealth(): StoreHealth {
    return this.opts.store.health?.() ?? { backend: "filesystem", state: "ok", reason: null };
  }

  /** Every task, sorted. */
  tasks(): readonly string[] {
    return this.opts.store.index.names();
  }

  get taskCount(): number {
    return this.opts.store.index.size;
  }

  hasTask(task: string): boolean {
    return this.opts.store.index.has(task);
  }

  currentVersion(task: string): number | null {
    return this.opts.store.index.get(task)?.version ?? null;
  }

  /** Up to `limit` tasks after `after` in name order, from the index alone (no file is read). */
  page(after: string | undefined, limit: number, match?: (task: string) => boolean): TaskPage {
    const index = this.opts.store.index;
    const names = index.page(after, limit + 1, match);
    const more = names.length > limit;
    const tasks: TaskListing[] = [];
    for (const task of names.slice(0, limit)) {
      const entry = index.get(task)!;
      const summary = unpackSummary(entry.summary);
      if (summary) tasks.push({ task, version: entry.version, ...summary });
      else this.opts.log?.("warn", "task left out of the listing: its current adapter's metadata is unreadable", { task, version: entry.version });
    }
    return { tasks, total: match ? index.count(match) : index.size, last: more ? names[limit - 1] : null };
  }

  /** The prepared current version of `task` (from cache, or loaded once). */
  async acquire(task: string): Promise<PreparedAdapter> {
    const version = this.currentVersion(task);
    if (version === null) throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"; GET /tasks lists the servable tasks`);
    return this.load(task, version);
  }

  /** Prepares `task`@`version` again without touching the cache (the semantic-cache-off debug mode). */
  async prepareUncached(task: string): Promise<PreparedAdapter> {
    const version = this.currentVersion(task);
    if (version === null) throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"`);
    return this.prepare(this.decodeFor(task, await this.opts.store.read(task, version)), version, false);
  }

  private async load(task: string, version: number): Promise<PreparedAdapter> {
    const key = `${task}@v${version}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.opts.metrics?.cacheHits.inc();
      return hit;
    }
    const known = this.invalid.get(key);
    if (known) throw known;
    this.opts.metrics?.cacheMisses.inc();
    let pending = this.loading.get(key);
    if (!pending) {
      pending = this.loadFromStore(task, version).finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    return pending;
  }

  private async loadFromStore(task: string, version: number): Promise<PreparedAdapter> {
    const started = performance.now();
    let prepared: PreparedAdapter;
    try {
      prepared = await this.prepare(this.decodeFor(task, await this.opts.store.read(task, version)), version);
    } catch (e) {
      throw this.unservable(task, version, e);
    }
    // Only cache what is still current or routed: a load that raced a swap or delete must not linger.
    if (this.currentVersion(task) === version || this.routedVersions(task).includes(version)) this.remember(prepared);
    this.opts.metrics?.adapterLoadDuration.observe((performance.now() - started) / 1000);
    return prepared;
  }

  /**
   * A stored current version that fails validation or preparation, or whose file is gone, cannot be
   * served until an admin uploads or rolls back: 409 `adapter_invalid` for this task only (the
   * request is fine and retrying will not help), logged and counted once per version. Disk errors
   * and a restarting worker pass through unchanged: they may clear by themselves.
   */
  private unservable(task: string, version: number, e: unknown): unknown {
    if (!isSktError(e) || !(e.kind === "invalid_adapter" || e.code === "version_not_found")) return e;
    const err = new SktError("conflict", "adapter_invalid", `task "${task}" cannot be served: its current adapter v${version} is invalid (${e.code}: ${e.message}). An admin must upload a new version or roll back.`, { task, version, reason: e.code });
    if (this.currentVersion(task) === version) this.invalid.set(`${task}@v${version}`, err);
    this.opts.metrics?.adaptersInvalid.inc({ code: e.code });
    this.opts.log?.("error", "adapter cannot be served", { task, version, code: e.code, error: e.message });
    return err;
  }

  private remember(prepared: PreparedAdapter): void {
    this.cache.set(prepared.key, prepared);
    this.updateCacheGauges();
  }

  /** The pointer of `task` moved or the task went away: nothing held for its other versions stays. */
  private forget(task: string, keepKey?: string): void {
    const routed = new Set(this.routedVersions(task).map((v) => `${task}@v${v}`));
    for (const key of [...this.cache.keys()]) if (key !== keepKey && !routed.has(key) && taskOfKey(key) === task) this.cache.delete(key);
    for (const key of [...this.invalid.keys()]) if (taskOfKey(key) === task) this.invalid.delete(key);
    // lru-cache calls dispose before it removes the entry, so the gauges are set again once it is gone.
    this.updateCacheGauges();
  }

  private updateCacheGauges(): void {
    this.opts.metrics?.cacheBytes.set(this.cache.calculatedSize ?? 0);
    this.opts.metrics?.adaptersLoaded.set(this.cache.size);
  }

  /** Full validation against this backbone, and the file must be for the task it is stored under. */
  private decodeFor(task: string, bytes: Uint8Array, hint = ""): AdapterFile {
    const file = decodeAdapter(bytes, this.decodeOptions());
    if (file.metadata.task !== task) {
      throw new SktError("invalid_adapter", "task_mismatch", `the adapter's metadata says task "${file.metadata.task}" but it is for "${task}"; an adapter may only replace its own task${hint}`);
    }
    return file;
  }

  private decodeOptions() {
    return { dims: this.opts.dims, fingerprint: this.opts.fingerprint, maxParameters: this.opts.maxParameters, maxBytes: this.opts.maxUploadBytes, maxAbsValue: this.opts.maxAbsValue };
  }

  /** The semantic pass over the prompt text, then F. Checks the prompt tokenizes as declared. */
  private async prepare(file: AdapterFile, version: number, reuseHiddenState = true): Promise<PreparedAdapter> {
    const meta = file.metadata;
    // Tokenized with an early stop: a prompt far longer than declared costs little to refuse.
    const prompt = this.opts.tokenizer.promptIds(meta.promptText, meta.promptLength);
    const promptIds = prompt.ids;
    if (prompt.truncated || promptIds.length !== meta.promptLength) {
      const count = prompt.truncated ? `at least ${prompt.fullLength}` : String(promptIds.length);
      throw new SktError("invalid_adapter", "prompt_length_mismatch", `prompt_text tokenizes to ${count} tokens on this backbone but the adapter declares prompt_length ${meta.promptLength}; retrain or fix the metadata`);
    }
    const hp = reuseHiddenState ? await this.promptHiddenState(meta.task, promptIds) : await this.runSemanticPass(meta.task, promptIds);
    return prepareAdapter(file, version, hp, this.opts.dims);
  }

  /** h_p for these prompt ids: cached, or one pass however many loads ask at once. */
  private async promptHiddenState(task: string, promptIds: number[]): Promise<Float32Array> {
    const key = promptIds.join(",");
    const cached = this.hiddenStates.get(key);
    if (cached) return cached;
    let pending = this.pendingPasses.get(key);
    if (!pending) {
      pending = this.runSemanticPass(task, promptIds)
        .then((hp) => {
          this.hiddenStates.set(key, hp);
          return hp;
        })
        .finally(() => this.pendingPasses.delete(key));
      this.pendingPasses.set(key, pending);
    }
    return pending;
  }

  private async runSemanticPass(task: string, promptIds: number[]): Promise<Float32Array> {
    const hp = await this.opts.semanticPass(promptIds);
    this.opts.metrics?.semanticPasses.inc({ task: this.opts.metrics.taskLabel(task) });
    return hp;
  }

  /**
   * The one way an adapter gets in (HTTP upload and the CLI's `install`): validate → prepare (the
   * prompt-length check included) → probe → write the new version → make it current → swap the
   * in-memory pointer. Anything that fails before CURRENT moves leaves the store as it was. With
   * `activate: false` the same checks run and the version is stored staged (inactive, kept from
   * pruning) without moving CURRENT; a task's staged versions are capped at its pruning limit.
   * Start-up applies the same validation and preparation to stored files at their first use (`load`).
   */
  async installAdapter(task: string, bytes: Uint8Array, options: { activate?: boolean } = {}): Promise<PreparedAdapter> {
    validateTaskName(task);
    const activate = options.activate ?? true;
    const file = this.decodeFor(task, bytes, `; to store it under "${task}" anyway, upload with ?rename=true (skt adapters upload --rename), which rewrites the file's task name`);
    return this.taskLocks.run(task, async () => {
      if (!activate) await this.checkStagingRoom(task);
      const draft = await this.prepare(file, 0); // fails before anything is written
      await this.opts.probe?.(draft);
      const version = await this.opts.store.writeVersion(task, bytes, { staged: !activate, keep: this.routedVersions(task) });
      const prepared = prepareAdapterWithVersion(draft, version);
      if (!activate) return prepared;
      try {
        await this.opts.store.setCurrent(task, version, bytes);
      } catch (e) {
        // The pointer did not move: take the new file back so a failed upload leaves nothing.
        await this.opts.store.deleteVersion(task, version).catch(() => undefined);
        throw e;
      }
      this.forget(task);
      this.remember(prepared);
      if (this.hasSplit(task)) await this.forgetTrafficSeries(task); // the old current's series go
      return prepared;
    });
  }

  /** Staged versions are never pruned, so their number is bounded here instead. */
  private async checkStagingRoom(task: string): Promise<void> {
    const limit = this.opts.store.maxVersionsPerTask;
    const staged = await this.opts.store.stagedVersions(task);
    if (staged.length >= limit) {
      throw new SktError("conflict", "too_many_staged_versions", `task "${task}" already holds ${staged.length} inactive versions waiting for activation (v${staged.join(", v")}), the most the task's version limit (${limit}) allows; activate or delete one first`, { task, staged });
    }
  }

  /** Makes `version` (default: the newest one below the current) current again. */
  async rollback(task: string, version?: number): Promise<PreparedAdapter> {
    return this.activate(task, version);
  }

  /**
   * Makes a stored version current: prepared and probed first, so a failure changes nothing. A task
   * whose versions are all inactive (never activated) can be activated only with an explicit
   * version. `expectCurrent`: refuse with 409 `current_changed` unless the current version is still
   * this one (a decision taken against it, like an evaluation gate's, must not overwrite a newer one).
   */
  async activate(task: string, version?: number, expectCurrent?: number | null): Promise<PreparedAdapter> {
    validateTaskName(task);
    return this.taskLocks.run(task, async () => {
      const cur = this.currentVersion(task);
      if (expectCurrent !== undefined && cur !== expectCurrent) {
        throw new SktError("conflict", "current_changed", `the current version of task "${task}" changed (now ${cur === null ? "none" : `v${cur}`}, expected ${expectCurrent === null ? "none" : `v${expectCurrent}`})`, { task, current: cur });
      }
      const versions = (await this.opts.store.listVersions(task)).map((v) => v.version);
      if (cur === null && (version === undefined || versions.length === 0)) throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"`);
      const target = version ?? Math.max(-1, ...versions.filter((v) => v < cur!));
      if (target < 0) throw new SktError("conflict", "no_previous_version", `task "${task}" has no version before v${cur} to roll back to`);
      // Re-activating the current version would re-read, re-probe and rewrite CURRENT for nothing.
      if (target === cur) throw new SktError("conflict", "version_is_current", `v${cur} of task "${task}" is already current`);
      if (!versions.includes(target)) throw new SktError("not_found", "version_not_found", `task "${task}" has no version ${target}; stored versions: ${versions.join(", ")}`);
      const bytes = await this.opts.store.read(task, target);
      const prepared = await this.prepare(this.decodeFor(task, bytes), target);
      await this.opts.probe?.(prepared); // versions stored before the probe existed
      await this.opts.store.setCurrent(task, target, bytes);
      // The new current version leaves the split in the same locked step (it cannot be its own canary).
      const shrank = this.traffic.removeVersion(task, target);
      this.forget(task);
      this.remember(prepared);
      if (shrank) await this.splitShrank(task);
      else if (this.hasSplit(task)) await this.forgetTrafficSeries(task); // the old current's series go
      return prepared;
    });
  }

  /**
   * Removes one stored version that is not current (409 `version_is_current` for the current one);
   * a traffic split naming it loses it in the same step.
   */
  async deleteVersion(task: string, version: number): Promise<void> {
    validateTaskName(task);
    await this.taskLocks.run(task, async () => {
      const versions = (await this.opts.store.listVersions(task)).map((v) => v.version);
      if (!versions.includes(version)) throw new SktError("not_found", "version_not_found", `task "${task}" has no version ${version}`, { task, version });
      await this.opts.store.deleteVersion(task, version);
      this.cache.delete(`${task}@v${version}`);
      if (this.traffic.removeVersion(task, version)) await this.splitShrank(task);
    });
  }

  /**
   * A stored version prepared for evaluation, whether current or not. Not cached unless it is the
   * current one (an evaluation must not push live adapters out of the cache).
   */
  async prepareVersion(task: string, version: number): Promise<PreparedAdapter> {
    validateTaskName(task);
    if (this.currentVersion(task) === version) return this.load(task, version);
    return this.prepare(this.decodeFor(task, await this.opts.store.read(task, version)), version);
  }

  /** The store's documents about a task (see AdapterStore.readDocument). */
  readDocument(task: string, name: string): Promise<Uint8Array | null> {
    validateTaskName(task);
    return this.opts.store.readDocument(task, name);
  }

  writeDocument(task: string, name: string, bytes: Uint8Array): Promise<void> {
    validateTaskName(task);
    return this.opts.store.writeDocument(task, name, bytes);
  }

  deleteDocument(task: string, name: string): Promise<boolean> {
    validateTaskName(task);
    return this.opts.store.deleteDocument(task, name);
  }

  /** Versions uploaded inactive and not made current since. */
  async stagedVersions(task: string): Promise<number[]> {
    validateTaskName(task);
    return this.opts.store.stagedVersions(task);
  }

  async delete(task: string): Promise<void> {
    validateTaskName(task);
    await this.taskLocks.run(task, async () => {
      // A task whose versions are all inactive is not served but can be deleted.
      if (!this.hasTask(task) && (await this.opts.store.listVersions(task)).length === 0) throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"`);
      await this.opts.store.deleteTask(task);
      const hadSplit = this.traffic.delete(task);
      // Version numbers restart after a delete, so nothing cached for this task may survive it.
      this.forget(task);
      if (hadSplit) await this.splitShrank(task);
    });
  }

  /** Metadata of a stored version, read from its file (full values; nothing is kept). */
  async metadata(task: string, version: number): Promise<AdapterMetadata> {
    return peekMetadata(await this.opts.store.read(task, version), { maxBytes: this.opts.maxUploadBytes });
  }

  async versions(task: string): Promise<StoredVersion[]> {
    validateTaskName(task);
    return this.opts.store.listVersions(task);
  }
}

function prepareAdapterWithVersion(draft: PreparedAdapter, version: number): PreparedAdapter {
  return Object.freeze({ ...draft, key: `${draft.task}@v${version}`, version });
}
