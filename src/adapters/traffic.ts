/**
 * Traffic splits: per task, an optional canary (a stored version that answers a share of the task's
 * rows) and an optional shadow (a stored version that also scores the rows the current version
 * answers, without its answer being returned). This module holds the splits, the routing decision
 * and the counts since each split was set; the registry validates, persists and clears them under
 * its per-task lock (registry.ts), and the engine asks it which version answers a request.
 *
 * Routing is deterministic, by rows: a request goes to the canary when that keeps the canary's
 * share of the rows routed since the split was set closest to its percent (a running deficit, so
 * after n rows the canary's share is within one request's rows of P % — no randomness, no clock).
 * All rows of one request go to one version, so the response's single `adapter_version` is true.
 */
import { SktError } from "../errors.js";

export interface CanarySplit {
  version: number;
  /** Share of the task's rows, 0-100 (fractions allowed). */
  percent: number;
}

export interface TrafficSplit {
  canary?: CanarySplit;
  shadow?: { version: number };
}

export type TrafficRole = "current" | "canary" | "shadow";
/** The roles that answer requests. */
export type AnsweringRole = Exclude<TrafficRole, "shadow">;

export interface VersionCounts {
  version: number;
  role: AnsweringRole;
  requests: number;
  rows: number;
}

export interface ShadowCounts {
  version: number;
  /** Rows the shadow scored next to the current version. */
  compared: number;
  /** Of those, rows where both gave the same top label (classification only). */
  agreed: number;
  /** compared > 0 ? agreed / compared : null (null for regression tasks too). */
  agreement: number | null;
  /** Shadow rows that could not run (queue full, load failure); never seen by clients. */
  skipped: number;
}

export interface TrafficState {
  task: string;
  current: number | null;
  canary: CanarySplit | null;
  shadow: { version: number } | null;
  /** ISO time the split was last set (counts start there); null when there is no split. */
  since: string | null;
  /** Rows and requests answered per version since then (current and canary; the shadow's are its own). */
  versions: VersionCounts[];
  shadowCounts: ShadowCounts | null;
}

/** What answers one request: the canary's version, or null for the current one; and the shadow's. */
export interface TrafficPick {
  canaryVersion: number | null;
  shadowVersion: number | null;
}

interface Entry {
  split: TrafficSplit;
  since: Date;
  canaryRows: number;
  totalRows: number;
  answered: Map<number, { role: AnsweringRole; requests: number; rows: number }>;
  shadow: { compared: number; agreed: number; skipped: number; comparable: boolean };
}

/** The versions a split names (canary first). */
export function splitVersions(split: TrafficSplit): number[] {
  return [split.canary?.version, split.shadow?.version].filter((v): v is number => v !== undefined);
}

export function isEmptySplit(split: TrafficSplit): boolean {
  return split.canary === undefined && split.shadow === undefined;
}

/**
 * Refuses a split that cannot apply to the task as it stands: percent outside 0-100 (422
 * `invalid_percent`), a version that is not stored (404 `version_not_found`), the current version
 * (409 `version_is_current`), or the same version as canary and shadow (422 `canary_is_shadow`).
 */
export function validateSplit(task: string, split: TrafficSplit, current: number, stored: readonly number[]): void {
  const { canary, shadow } = split;
  if (canary && !(Number.isFinite(canary.percent) && canary.percent >= 0 && canary.percent <= 100)) {
    throw new SktError(
      "unprocessable",
      "invalid_percent",
      `canary.percent must be between 0 and 100, got ${canary.percent}`,
    );
  }
  if (canary && shadow && canary.version === shadow.version) {
    throw new SktError(
      "unprocessable",
      "canary_is_shadow",
      `v${canary.version} cannot be both the canary and the shadow: the shadow is compared with the current version`,
    );
  }
  for (const [role, version] of [
    ["canary", canary?.version],
    ["shadow", shadow?.version],
  ] as const) {
    if (version === undefined) continue;
    if (version === current) {
      throw new SktError(
        "conflict",
        "version_is_current",
        `v${version} of task "${task}" is its current version; a ${role} must be another stored version`,
        { task, version, role },
      );
    }
    if (!stored.includes(version)) {
      throw new SktError(
        "not_found",
        "version_not_found",
        `task "${task}" has no version ${version}; stored versions: ${stored.join(", ")}`,
        { task, version, role },
      );
    }
  }
}

export class TrafficTable {
  private readonly entries = new Map<string, Entry>();

  /** The split of `task`, or undefined when it has none. */
  get(task: string): TrafficSplit | undefined {
    return this.entries.get(task)?.split;
  }

  tasks(): string[] {
    return [...this.entries.keys()];
  }

  /** Sets (or, with an empty split, clears) the split of `task`; counts start again from zero. */
  set(task: string, split: TrafficSplit, now = new Date()): void {
    if (isEmptySplit(split)) {
      this.entries.delete(task);
      return;
    }
    this.entries.set(task, {
      split: structuredClone(split),
      since: now,
      canaryRows: 0,
      totalRows: 0,
      answered: new Map(),
      shadow: { compared: 0, agreed: 0, skipped: 0, comparable: true },
    });
  }

  /**
   * Takes `version` out of the split of `task` (it became current, or was deleted); returns whether
   * anything changed. What remains keeps its counts.
   */
  removeVersion(task: string, version: number): boolean {
    const entry = this.entries.get(task);
    if (!entry) return false;
    const split = { ...entry.split };
    if (split.canary?.version === version) delete split.canary;
    if (split.shadow?.version === version) delete split.shadow;
    if (splitVersions(split).length === splitVersions(entry.split).length) return false;
    if (isEmptySplit(split)) this.entries.delete(task);
    else entry.split = split;
    return true;
  }

  delete(task: string): boolean {
    return this.entries.delete(task);
  }

  /** Which version answers a request of `rows` rows (see the module comment), and counts it as routed. */
  pick(task: string, rows: number): TrafficPick {
    const entry = this.entries.get(task);
    if (!entry) return { canaryVersion: null, shadowVersion: null };
    const { canary, shadow } = entry.split;
    let toCanary = false;
    if (canary) {
      // Send to the canary while it is short of its share by at least half this request.
      const deficit = (canary.percent / 100) * (entry.totalRows + rows) - entry.canaryRows;
      toCanary = canary.percent > 0 && deficit >= rows / 2;
      entry.totalRows += rows;
      if (toCanary) entry.canaryRows += rows;
    }
    return {
      canaryVersion: toCanary ? canary!.version : null,
      // The shadow is compared with the current version, so it scores the rows the current answers.
      shadowVersion: !toCanary && shadow ? shadow.version : null,
    };
  }

  /** A request of `rows` rows answered by `version` (counted only while the split names the task). */
  recordAnswer(task: string, version: number, role: AnsweringRole, rows: number): void {
    const entry = this.entries.get(task);
    if (!entry) return;
    const counts = entry.answered.get(version) ?? { role, requests: 0, rows: 0 };
    counts.role = role;
    counts.requests += 1;
    counts.rows += rows;
    entry.answered.set(version, counts);
  }

  /** Shadow rows compared with the current version's; `agreed` null when the outputs have no label. */
  recordShadow(task: string, version: number, compared: number, agreed: number | null): void {
    const entry = this.entries.get(task);
    if (!entry || entry.split.shadow?.version !== version) return;
    entry.shadow.compared += compared;
    if (agreed === null) entry.shadow.comparable = false;
    else entry.shadow.agreed += agreed;
  }

  recordShadowSkipped(task: string, version: number, rows: number): void {
    const entry = this.entries.get(task);
    if (!entry || entry.split.shadow?.version !== version) return;
    entry.shadow.skipped += rows;
  }

  state(task: string, current: number | null): TrafficState {
    const entry = this.entries.get(task);
    if (!entry) return { task, current, canary: null, shadow: null, since: null, versions: [], shadowCounts: null };
    const { canary, shadow } = entry.split;
    const s = entry.shadow;
    return {
      task,
      current,
      canary: canary ? { ...canary } : null,
      shadow: shadow ? { ...shadow } : null,
      since: entry.since.toISOString(),
      versions: [...entry.answered.entries()]
        .map(([version, c]) => ({ version, role: c.role, requests: c.requests, rows: c.rows }))
        .sort((a, b) => a.version - b.version),
      shadowCounts: shadow
        ? {
            version: shadow.version,
            compared: s.compared,
            agreed: s.agreed,
            agreement: s.comparable && s.compared > 0 ? s.agreed / s.compared : null,
            skipped: s.skipped,
          }
        : null,
    };
  }

  /** The splits as JSON for the store (counts are not persisted: they restart with the process). */
  serialize(): string {
    const out: Record<string, TrafficSplit> = {};
    for (const [task, entry] of [...this.entries].sort(([a], [b]) => (a < b ? -1 : 1))) out[task] = entry.split;
    return `${JSON.stringify({ splits: out })}\n`;
  }

  /** The splits in a file `serialize` wrote; anything malformed is left out and named in `problems`. */
  static parse(text: string): { splits: Map<string, TrafficSplit>; problems: string[] } {
    const splits = new Map<string, TrafficSplit>();
    const problems: string[] = [];
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return { splits, problems: ["not valid JSON"] };
    }
    const all = (raw as { splits?: unknown } | null)?.splits;
    if (typeof all !== "object" || all === null) return { splits, problems: ['no "splits" object'] };
    for (const [task, value] of Object.entries(all as Record<string, unknown>)) {
      const split = parseSplit(value);
      if (split) splits.set(task, split);
      else problems.push(`task "${task}": malformed split`);
    }
    return { splits, problems };
  }
}

const isVersion = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 1;

function parseSplit(value: unknown): TrafficSplit | null {
  if (typeof value !== "object" || value === null) return null;
  const { canary, shadow } = value as { canary?: { version?: unknown; percent?: unknown }; shadow?: { version?: unknown } };
  const split: TrafficSplit = {};
  if (canary !== undefined) {
    const percent = canary?.percent;
    if (!isVersion(canary?.version) || typeof percent !== "number" || !(percent >= 0 && percent <= 100)) return null;
    split.canary = { version: canary.version, percent };
  }
  if (shadow !== undefined) {
    if (!isVersion(shadow?.version)) return null;
    split.shadow = { version: shadow.version };
  }
  return isEmptySplit(split) ? null : split;
}
