/**
 * Lets the HTTP server listen before the backbone has loaded: /healthz answers at once and
 * /readyz says 503 until the engine arrives, as orchestrators expect of a slow-starting service.
 */
import type { StoreHealth } from "../adapters/store/interface.js";
import type { DeviceInfo } from "../backbone/device.js";
import { SktError } from "../errors.js";
import type {
  AdapterDetails,
  ClassifyRequest,
  ClassifyResult,
  EmbedRequest,
  EmbedResult,
  EvaluateRequest,
  InferenceService,
  PageRequest,
  Prediction,
  TaskInfo,
  TaskPage,
  UploadOptions,
  UploadResult,
  TrafficSplit,
  TrafficState,
} from "./service.js";

export class DeferredService implements InferenceService {
  private target: InferenceService | null = null;

  resolve(service: InferenceService): void {
    this.target = service;
  }

  private get ready(): InferenceService {
    if (!this.target)
      throw new SktError(
        "not_ready",
        "starting",
        "the server is still loading the backbone and the task index; retry shortly",
      );
    return this.target;
  }

  isReady(): boolean {
    return this.target?.isReady() ?? false;
  }
  deviceInfo(): DeviceInfo | null {
    return this.target?.deviceInfo() ?? null;
  }
  storeHealth(): StoreHealth | null {
    return this.target?.storeHealth?.() ?? null;
  }
  hasTask(task: string): boolean {
    return this.target?.hasTask(task) ?? false;
  }
  async classify(req: ClassifyRequest): Promise<ClassifyResult> {
    return this.ready.classify(req);
  }
  async embed(req: EmbedRequest): Promise<EmbedResult> {
    return this.ready.embed(req);
  }
  async listTasks(page: PageRequest): Promise<TaskPage> {
    return this.ready.listTasks(page);
  }
  async adapterDetails(task: string): Promise<AdapterDetails> {
    return this.ready.adapterDetails(task);
  }
  async upload(task: string, bytes: Uint8Array, options?: UploadOptions): Promise<UploadResult> {
    return this.ready.upload(task, bytes, options);
  }
  async activate(task: string, version: number, options?: { expectCurrent?: number | null }): Promise<TaskInfo> {
    return this.ready.activate(task, version, options);
  }
  async deleteVersion(task: string, version: number): Promise<void> {
    return this.ready.deleteVersion(task, version);
  }
  async evaluate(req: EvaluateRequest): Promise<Prediction[]> {
    return this.ready.evaluate(req);
  }
  async readDocument(task: string, name: string): Promise<Uint8Array | null> {
    return this.ready.readDocument(task, name);
  }
  async writeDocument(task: string, name: string, bytes: Uint8Array): Promise<void> {
    return this.ready.writeDocument(task, name, bytes);
  }
  async deleteDocument(task: string, name: string): Promise<boolean> {
    return this.ready.deleteDocument(task, name);
  }
  async rollback(task: string, version?: number): Promise<TaskInfo> {
    return this.ready.rollback(task, version);
  }
  async deleteTask(task: string): Promise<void> {
    return this.ready.deleteTask(task);
  }
  async trafficState(task: string): Promise<TrafficState> {
    return this.ready.trafficState(task);
  }
  async setTraffic(task: string, split: TrafficSplit): Promise<TrafficState> {
    return this.ready.setTraffic(task, split);
  }
  async close(): Promise<void> {
    await this.target?.close();
  }
}
