import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Fails a test when a response it received does not match the OpenAPI document.
    setupFiles: ["test/helpers/contract-setup.ts"],
    // The backbone build and TF.js parity runs take a while on a 2-core machine.
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Suites share one built model under models/; forks keep onnxruntime sessions isolated.
    pool: "forks",
    fileParallelism: false,
  },
});
