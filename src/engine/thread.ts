/**
 * Starting a worker thread on a module of this project, from the built output or from source.
 * Source runs (tsx, vitest, the scripts) have .ts modules: tsx's loader is registered inside the
 * thread first, resolved from here, not from the working folder (which may be anywhere, e.g.
 * `skt serve` in /srv).
 */
import { Worker } from "node:worker_threads";

export function startThread(moduleUrl: URL | string, workerData: unknown): Worker {
  const href = String(moduleUrl);
  if (!new URL(href).pathname.endsWith(".ts")) return new Worker(new URL(href), { workerData });
  const tsxApi = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}
