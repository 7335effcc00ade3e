/**
 * Lets the HTTP server listen before the backbone has loaded: /healthz answers at once and
 * /readyz says 503 until the engine arrives, as orchestrators expect of a slow-starting service.
 */
import type { DeviceInfo } from "../backbone/device.js";
import { SktError } from "../errors.js";
import type {
  AdapterDetails,
  ClassifyRequest,
  ClassifyResult,
  EmbedRequest,
  EmbedResult,
  InferenceService,
  PageRequest,
  TaskInfo,
  TaskPage,
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
  async upload(task: string, bytes: Uint8Array): Promise<TaskInfo> {
    return this.ready.upload(task, bytes);
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
