/** Engine options for tests: small, explicit limits (a test overrides what it is about). */
import type { EngineOptions } from "../../src/engine/engine.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";

export function testEngineOptions(adaptersDir: string, overrides: Partial<EngineOptions> = {}): EngineOptions {
  return {
    modelsDir: MODELS_DIR,
    adaptersDir,
    threads: 2,
    device: "cpu",
    maxBatchSize: 32,
    maxBatchTokens: 4096,
    maxWaitMs: 5,
    maxPaddingRatio: 0.25,
    queueSize: 1024,
    cacheBytes: 64 * 1024 * 1024,
    maxAdapterParams: 1_000_000,
    maxUploadBytes: 16 * 1024 * 1024,
    semanticCache: true,
    requestTimeoutMs: 60_000,
    ...overrides,
  };
}
