/**
 * What the engine records for tasks with a traffic split (see adapters/traffic.ts): per-version
 * request, row, latency and label series, and the shadow's agreement with the current version.
 * Tasks without a split record nothing here, so the per-version series stay few.
 */
import type { HeadOutput, PreparedAdapter } from "../adapters/prepared.js";
import type { AdapterRegistry } from "../adapters/registry.js";
import type { TrafficRole } from "../adapters/traffic.js";
import { MAX_LABEL_VALUES, OTHER_LABELS_LABEL, type SktMetrics } from "../metrics.js";

function labelValue(adapter: PreparedAdapter, label: string): string {
  const index = adapter.metadata.labels.indexOf(label);
  return index >= 0 && index < MAX_LABEL_VALUES ? label : OTHER_LABELS_LABEL;
}

function countLabels(
  metrics: SktMetrics,
  series: { task: string; version: string; role: TrafficRole },
  adapter: PreparedAdapter,
  outputs: readonly HeadOutput[],
): void {
  for (const out of outputs)
    if (out.label !== undefined) metrics.trafficLabels.inc({ ...series, label: labelValue(adapter, out.label) });
}

/** A request of `task` answered by `adapter` in `seconds` (engine time). */
export function recordAnswer(
  registry: AdapterRegistry,
  metrics: SktMetrics | undefined,
  task: string,
  adapter: PreparedAdapter,
  role: Exclude<TrafficRole, "shadow">,
  outputs: readonly HeadOutput[],
  seconds: number,
): void {
  if (!registry.hasSplit(task)) return;
  registry.recordTrafficAnswer(task, adapter.version, role, outputs.length);
  if (!metrics) return;
  const series = { task: metrics.taskLabel(task), version: String(adapter.version), role };
  metrics.trafficRequests.inc(series);
  metrics.trafficRows.inc(series, outputs.length);
  metrics.trafficDuration.observe(series, seconds);
  countLabels(metrics, series, adapter, outputs);
}

/**
 * The shadow's outputs next to the current version's for the same rows: agreement is the same top
 * label (regression outputs have none: counted as compared, agreement unknown).
 */
export function recordShadow(
  registry: AdapterRegistry,
  metrics: SktMetrics | undefined,
  task: string,
  shadow: PreparedAdapter,
  outputs: readonly HeadOutput[],
  answered: readonly HeadOutput[],
): void {
  const labelled = outputs.every((o, i) => o.label !== undefined && answered[i]?.label !== undefined);
  const agreed = labelled ? outputs.filter((o, i) => o.label === answered[i].label).length : null;
  const state = registry.recordShadow(task, shadow.version, outputs.length, agreed);
  if (!metrics || state.shadow?.version !== shadow.version) return;
  const series = { task: metrics.taskLabel(task), version: String(shadow.version) };
  metrics.trafficRows.inc({ ...series, role: "shadow" }, outputs.length);
  countLabels(metrics, { ...series, role: "shadow" }, shadow, outputs);
  metrics.shadowCompared.inc(series, outputs.length);
  if (agreed !== null) metrics.shadowAgreed.inc(series, agreed);
  const ratio = state.shadowCounts?.agreement;
  if (ratio !== null && ratio !== undefined) metrics.shadowAgreement.set(series, ratio);
}
