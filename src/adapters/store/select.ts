/** Picks the adapter store from SKT_STORE: unset → the filesystem store; `postgres://…` → the shared store. */
import type { Registry } from "prom-client";
import { SktError } from "../../errors.js";
import { AdapterStore as FilesystemAdapterStore } from "../store.js";
import type { AdapterStore } from "./interface.js";
import { PostgresAdapterStore } from "./postgres.js";

export interface StoreSelection {
  /** SKT_STORE; undefined means the filesystem store. */
  store?: string;
  adaptersDir: string;
  metricsRegistry?: Registry;
  log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

export function createAdapterStore(sel: StoreSelection): AdapterStore {
  if (sel.store === undefined) return new FilesystemAdapterStore(sel.adaptersDir);
  if (isPostgresUrl(sel.store)) {
    return new PostgresAdapterStore({ url: sel.store, localDir: sel.adaptersDir, metricsRegistry: sel.metricsRegistry, log: sel.log });
  }
  throw new SktError("bad_request", "invalid_config", "SKT_STORE must be a postgres:// or postgresql:// URL (unset: the filesystem store in SKT_ADAPTERS_DIR)");
}
