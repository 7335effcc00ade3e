/**
 * The registry of servable adapters: which version of each task is current, and a byte-budgeted
 * LRU cache of prepared adapters (semantic pass + F done). Misses load from the store once however
 * many requests wait (single-flight). Uploads and rollbacks prepare the new version completely
 * before the pointer moves, so requests never see a half-ready adapter, and requests that already
 * took a prepared object keep it (hot swap).
 */
import { LRUCache } from "lru-cache";
import type { BackboneDims } from "../backbone/dims.js";
import type { BackboneTokenizer } from "../backbone/tokenizer.js";
import { SktError } from "../errors.js";
import type { SktMetrics } from "../metrics.js";
import { decodeAdapter, peekMetadata, type AdapterFile, type AdapterMetadata } from "./format.js";
import { prepareAdapter, type PreparedAdapter } from "./prepared.js";
import type { AdapterStore, StoredVersion } from "./store.js";
import { validateTaskName } from "./task-name.js";

export interface RegistryOptions {
  store: AdapterStore;
  dims: BackboneDims;
  fingerprint: string;
  tokenizer: BackboneTokenizer;
  /** Backbone last hidden state of the prompt's token ids, [L, H_out]. */
  semanticPass: (promptIds: number[]) => Promise<Float32Array>;
  cacheBytes: number;
  maxParameters: number;
  maxUploadBytes: number;
  metrics?: SktMetrics;
  log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

export class AdapterRegistry {
  private readonly current = new Map<string, number>();
  private readonly metadataByKey = new Map<string, AdapterMetadata>();
  private readonly loading = new Map<string, Promise<PreparedAdapter>>();
  private readonly taskLocks = new Map<string, Promise<unknown>>();
  private readonly cache: LRUCache<string, PreparedAdapter>;
  /**
   * h_p by prompt token ids. The semantic pass depends only on the prompt, and many adapters share
   * one (every version of a task, often many tasks), so a reload after eviction or a new version
   * with the same prompt costs no backbone pass. Small: L × 512 floats per distinct prompt.
   */
  private readonly hiddenStates = new LRUCache<string, Float32Array>({ maxSize: 32 * 1024 * 1024, sizeCalculation: (a) => a.byteLength });
  private readonly pendingPasses = new Map<string, Promise<Float32Array>>();

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

  /** Reads every task's current version; prepares as many as the cache holds. */
  async init(): Promise<void> {
    const { removedTempFiles } = await this.opts.store.recover();
    if (removedTempFiles.length) this.opts.log?.("warn", "removed leftover temp files from an interrupted write", { files: removedTempFiles });
    for (const task of await this.opts.store.listTasks()) {
      const version = await this.opts.store.current(task);
      if (version !== null) this.current.set(task, version);
    }
    for (const task of this.tasks()) {
      try {
        await this.acquire(task);
      } catch (e) {
        this.opts.log?.("error", "adapter cannot be served", { task, version: this.current.get(task), error: (e as Error).message });
      }
    }
  }

  tasks(): string[] {
    return [...this.current.keys()].sort();
  }

  hasTask(task: string): boolean {
    return this.current.has(task);
  }

  currentVersion(task: string): number | null {
    return this.current.get(task) ?? null;
  }

  /** The prepared current version of `task` (from cache, or loaded once). */
  async acquire(task: string): Promise<PreparedAdapter> {
    const version = this.current.get(task);
    if (version === undefined) throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"; GET /tasks lists the servable tasks`);
    return this.load(task, version);
  }

  /** Prepares `task`@`version` again without touching the cache (the semantic-cache-off debug mode). */
  async prepareUncached(task: string): Promise<PreparedAdapter> {
    const version = this.current.get(task);
    if (version === undefined) throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"`);
    return this.prepare(decodeAdapter(await this.opts.store.read(task, version), this.decodeOptions()), version, false);
  }

  private async load(task: string, version: number): Promise<PreparedAdapter> {
    const key = `${task}@v${version}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.opts.metrics?.cacheHits.inc();
      return hit;
    }
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
    const file = decodeAdapter(await this.opts.store.read(task, version), this.decodeOptions());
    const prepared = await this.prepare(file, version);
    // Only cache what is still current: a load that raced a swap or delete must not linger.
    if (this.current.get(task) === version) this.remember(prepared);
    this.opts.metrics?.adapterLoadDuration.observe((performance.now() - started) / 1000);
    return prepared;
  }

  private remember(prepared: PreparedAdapter): void {
    this.metadataByKey.set(prepared.key, prepared.metadata);
    this.cache.set(prepared.key, prepared);
    this.updateCacheGauges();
  }

  private updateCacheGauges(): void {
    this.opts.metrics?.cacheBytes.set(this.cache.calculatedSize ?? 0);
    this.opts.metrics?.adaptersLoaded.set(this.cache.size);
  }

  private decodeOptions() {
    return { dims: this.opts.dims, fingerprint: this.opts.fingerprint, maxParameters: this.opts.maxParameters, maxBytes: this.opts.maxUploadBytes };
  }

  /** The semantic pass over the prompt text, then F. Checks the prompt tokenizes as declared. */
  private async prepare(file: AdapterFile, version: number, reuseHiddenState = true): Promise<PreparedAdapter> {
    const meta = file.metadata;
    const promptIds = this.opts.tokenizer.ids(meta.promptText);
    if (promptIds.length !== meta.promptLength) {
      throw new SktError("invalid_adapter", "prompt_length_mismatch", `prompt_text tokenizes to ${promptIds.length} tokens on this backbone but the adapter declares prompt_length ${meta.promptLength}; retrain or fix the metadata`);
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
    this.opts.metrics?.semanticPasses.inc({ task });
    return hp;
  }

  /** Serialises mutations of one task (uploads, rollbacks, deletes). */
  private withTaskLock<T>(task: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.taskLocks.get(task) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.taskLocks.set(task, tail);
    void tail.then(() => {
      if (this.taskLocks.get(task) === tail) this.taskLocks.delete(task);
    });
    return next;
  }

  /** Validate → prepare → write the new version → make it current → swap the in-memory pointer. */
  async upload(task: string, bytes: Uint8Array): Promise<PreparedAdapter> {
    validateTaskName(task);
    const file = decodeAdapter(bytes, this.decodeOptions());
    if (file.metadata.task !== task) {
      throw new SktError("invalid_adapter", "task_mismatch", `the adapter's metadata says task "${file.metadata.task}" but it was uploaded to "${task}"; an upload may only replace its own task`);
    }
    return this.withTaskLock(task, async () => {
      const draft = await this.prepare(file, 0); // fails before anything is written
      const version = await this.opts.store.writeVersion(task, bytes);
      const prepared = prepareAdapterWithVersion(draft, version);
      try {
        await this.opts.store.setCurrent(task, version);
      } catch (e) {
        // The pointer did not move: take the new file back so a failed upload leaves nothing.
        await this.opts.store.deleteVersion(task, version).catch(() => undefined);
        throw e;
      }
      this.current.set(task, version);
      this.remember(prepared);
      return prepared;
    });
  }

  /** Makes `version` (default: the newest one below the current) current again. */
  async rollback(task: string, version?: number): Promise<PreparedAdapter> {
    validateTaskName(task);
    return this.withTaskLock(task, async () => {
      const cur = this.current.get(task);
      if (cur === undefined) throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"`);
      const versions = (await this.opts.store.listVersions(task)).map((v) => v.version);
      const target = version ?? Math.max(-1, ...versions.filter((v) => v < cur));
      if (target < 0) throw new SktError("conflict", "no_previous_version", `task "${task}" has no version before v${cur} to roll back to`);
      if (!versions.includes(target)) throw new SktError("not_found", "version_not_found", `task "${task}" has no version ${target}; stored versions: ${versions.join(", ")}`);
      const file = decodeAdapter(await this.opts.store.read(task, target), this.decodeOptions());
      const prepared = await this.prepare(file, target);
      await this.opts.store.setCurrent(task, target);
      this.current.set(task, target);
      this.remember(prepared);
      return prepared;
    });
  }

  async delete(task: string): Promise<void> {
    validateTaskName(task);
    await this.withTaskLock(task, async () => {
      if (!this.current.has(task)) throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"`);
      await this.opts.store.deleteTask(task);
      this.current.delete(task);
      // Version numbers restart after a delete, so nothing cached for this task may survive it.
      for (const key of [...this.cache.keys()]) if (key.startsWith(`${task}@v`)) this.cache.delete(key);
      for (const key of [...this.metadataByKey.keys()]) if (key.startsWith(`${task}@v`)) this.metadataByKey.delete(key);
    });
  }

  /** Metadata of a stored version without preparing it. */
  async metadata(task: string, version: number): Promise<AdapterMetadata> {
    const key = `${task}@v${version}`;
    const known = this.metadataByKey.get(key);
    if (known) return known;
    const meta = peekMetadata(await this.opts.store.read(task, version), { maxBytes: this.opts.maxUploadBytes });
    this.metadataByKey.set(key, meta);
    return meta;
  }

  async versions(task: string): Promise<StoredVersion[]> {
    validateTaskName(task);
    return this.opts.store.listVersions(task);
  }
}

function prepareAdapterWithVersion(draft: PreparedAdapter, version: number): PreparedAdapter {
  return Object.freeze({ ...draft, key: `${draft.task}@v${version}`, version });
}
