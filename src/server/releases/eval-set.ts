/**
 * A task's evaluation set for the release gate: a labelled file in the trainer's formats (TSV, CSV,
 * JSONL; parsed by train/datasets.ts, a leaf module with no engine or server imports), checked
 * against the adapter's labels, and stored as one JSON document next to the task's versions.
 *
 * Labels: the adapter's label names, or — for single-label tasks whose file uses GLUE-style
 * indices "0", "1", … — indices into the adapter's label list (stored converted to names).
 */
import { createHash } from "node:crypto";
import { SktError } from "../../errors.js";
import type { ProblemType } from "../../engine/service.js";
import { parseDataset, type Dataset, type DatasetFormat } from "../../train/datasets.js";

export const EVAL_SET_DOCUMENT = "eval-set.json";

/** Media types of an eval-set upload and the trainer's format each one means. */
export const EVAL_SET_MEDIA_TYPES: Record<string, DatasetFormat> = {
  "text/tab-separated-values": ".tsv",
  "text/csv": ".csv",
  "application/jsonl": ".jsonl",
  "application/x-ndjson": ".jsonl",
};

export interface EvalExample {
  text: string;
  pair?: string;
  /** A label name (single-label), the names that apply (multi-label) or a number (regression). */
  label: string | string[] | number;
}

export interface EvalSet {
  format: "tsv" | "csv" | "jsonl";
  rows: number;
  /** sha256 of the uploaded bytes. */
  sha256: string;
  created_at: string;
  problem_type: ProblemType;
  /** The adapter's labels the set was checked against. */
  labels: string[];
  /** "position" when the file's labels were indices into `labels`. */
  label_mapping: "names" | "position";
  text_pair: boolean;
  examples: EvalExample[];
}

/** What the set is checked against: the task's current (or newest) version. */
export interface EvalTarget {
  labels: string[];
  problemType: ProblemType;
  textPair: boolean;
}

export function mediaTypeFormat(contentType: string | undefined): DatasetFormat {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  const format = EVAL_SET_MEDIA_TYPES[type];
  if (!format) {
    throw new SktError(
      "unsupported_media",
      "unsupported_media_type",
      `Send the evaluation set as ${Object.keys(EVAL_SET_MEDIA_TYPES).join(", ")} (got ${type ? `'${type}'` : "none"}).`,
    );
  }
  return format;
}

/** Parses and checks an uploaded set; every problem is a 4xx naming the line at fault. */
export function parseEvalSet(
  bytes: Uint8Array,
  format: DatasetFormat,
  target: EvalTarget,
  maxRows: number,
  now = new Date(),
): EvalSet {
  let content: string;
  try {
    content = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new SktError("bad_request", "eval_set_not_utf8", "eval-set: the body is not valid UTF-8");
  }
  const regression = target.problemType === "regression";
  // The trainer's errors (400, `dataset_*`) name the line at fault.
  const data: Dataset = parseDataset(
    content,
    format,
    "eval-set",
    regression ? { task: "regression" } : { task: "classification" },
  );
  if (data.examples.length > maxRows) {
    throw new SktError(
      "too_large",
      "eval_set_too_large",
      `eval-set: ${data.examples.length} rows; at most ${maxRows} are accepted (SKT_MAX_EVAL_SET_ROWS)`,
      { limit: maxRows },
    );
  }
  if (data.hasPairs !== target.textPair) {
    throw invalid(
      "eval_set_pair_mismatch",
      target.textPair
        ? "the task classifies text pairs: give every row a second segment (text_pair or sentence2)"
        : "the task takes single texts: remove the second segment (text_pair or sentence2)",
    );
  }
  const multi = target.problemType === "multi_label_classification";
  if (data.multiLabel !== multi) {
    throw invalid(
      "eval_set_label_kind",
      multi ? 'the task is multi-label: use a "labels" column or key' : 'the task has one label per text: use "label"',
    );
  }
  const mapping = regression || multi ? "names" : labelMapping(data.labels, target.labels);
  const toName = (l: string) => (mapping === "position" ? target.labels[Number(l)] : l);
  const known = new Set(target.labels);
  const examples = data.examples.map((ex): EvalExample => {
    let label: EvalExample["label"];
    if (regression) label = ex.label;
    else if (multi) {
      const names = ex.label as string[];
      const unknown = names.find((n) => !known.has(n));
      if (unknown !== undefined) throw unknownLabel(ex.line, unknown, target.labels);
      label = names;
    } else label = toName(ex.label as string);
    return ex.pair === undefined ? { text: ex.text, label } : { text: ex.text, pair: ex.pair, label };
  });
  return {
    format: format.slice(1) as EvalSet["format"],
    rows: examples.length,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    created_at: now.toISOString(),
    problem_type: target.problemType,
    labels: [...target.labels],
    label_mapping: mapping,
    text_pair: target.textPair,
    examples,
  };
}

/** Names when every label is one of the adapter's; positions when all are indices below its label count. */
function labelMapping(fileLabels: string[], adapterLabels: string[]): "names" | "position" {
  if (fileLabels.every((l) => adapterLabels.includes(l))) return "names";
  if (fileLabels.every((l) => /^(0|[1-9]\d*)$/.test(l) && Number(l) < adapterLabels.length)) return "position";
  const unknown = fileLabels.filter((l) => !adapterLabels.includes(l));
  throw invalid(
    "eval_set_unknown_label",
    `labels ${unknown.map((l) => JSON.stringify(l)).join(", ")} are not the adapter's (${adapterLabels.join(", ")}) nor indices 0..${adapterLabels.length - 1} into them`,
    { unknown, labels: adapterLabels },
  );
}

function unknownLabel(line: number, label: string, labels: string[]): SktError {
  return invalid(
    "eval_set_unknown_label",
    `line ${line}: unknown label ${JSON.stringify(label)} (the adapter's labels are ${labels.join(", ")})`,
    { line, labels },
  );
}

function invalid(code: string, message: string, details?: Record<string, unknown>): SktError {
  return new SktError("bad_request", code, `eval-set: ${message}`, details);
}

/** The stored set, or null; a document that does not parse is reported, not guessed at. */
export function decodeEvalSet(bytes: Uint8Array | null): EvalSet | null {
  if (bytes === null) return null;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as EvalSet;
  } catch {
    throw new SktError(
      "storage",
      "eval_set_unreadable",
      "the stored evaluation set is not valid JSON; upload it again",
    );
  }
}

/** The set as `GET …/eval-set` shows it: everything but the rows. */
export function evalSetSummary(set: EvalSet): Omit<EvalSet, "examples"> {
  const { examples: _examples, ...summary } = set;
  return summary;
}
