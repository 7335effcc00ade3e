/**
 * Training-data loading: GLUE-style TSV, JSONL and CSV files into one in-memory `Dataset`.
 *
 * Formats (chosen by file extension):
 * - `.tsv`: GLUE layout. A header row, tab-separated, no quoting (GLUE files contain bare `"`
 *   characters inside sentences, so quotes are ordinary text here).
 * - `.csv`: RFC 4180. Quoted fields may contain commas, newlines and doubled quotes (`""`); CRLF or
 *   LF line ends. A `"` inside an unquoted field is kept literally (lenient, like most readers).
 * - `.jsonl`: one JSON object per line.
 *
 * Columns (TSV/CSV header, JSONL keys): the text is `text`, `sentence` or `sentence1`; the optional
 * second segment is `text_pair` (with `text`) or `sentence2` (required with `sentence1`); the target
 * is `label`. Other columns are ignored. Header names are matched exactly after trimming spaces.
 *
 * Multi-label data names its target `labels` instead: a JSON array of label names in JSONL, or in
 * TSV/CSV a cell of names separated by `|` (an empty cell or [] means none applies). A file is
 * either all `label` or all `labels`.
 *
 * Labels: TSV/CSV labels are strings, so GLUE's "0"/"1" stay "0"/"1" (callers map them to names).
 * A dataset is regression when `opts.task` says so, or — without `task` or `labels` — when it is
 * JSONL whose labels are JSON numbers. Regression labels are numbers and `labels` is [].
 *
 * Blank lines are skipped anywhere (trailing ones are common). Every error is an
 * `SktError("bad_request", "dataset_*", ...)` whose message starts with the file path and, when a
 * line is at fault, "line N" (1-based, physical lines; a CSV record's line is where it starts).
 */
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { SktError } from "../errors.js";

export interface Example {
  text: string;
  pair?: string;
  /** Class name for classification, number for regression, the names that apply for multi-label. */
  label: string | number | string[];
  /** 1-based line in the source file where the example starts. */
  line: number;
}

export interface Dataset {
  path: string;
  examples: Example[];
  /** Distinct class names, sorted (number-like names numerically, before others); [] for regression. */
  labels: string[];
  hasPairs: boolean;
  /** Each example carries a set of labels (`labels` column or key). */
  multiLabel: boolean;
}

export interface LoadDatasetOptions {
  /**
   * The fixed label set, e.g. the training set's labels when loading a validation file. Implies
   * classification; any other label is an error; `Dataset.labels` is this list in the given order,
   * so label indices agree with the caller's.
   */
  labels?: string[];
  /** Force the problem type instead of inferring it (see the module comment). */
  task?: "classification" | "regression";
}

/** A parsed row before label typing: what every format reduces to. */
interface RawExample {
  text: string;
  pair?: string;
  label: string | number | string[];
  line: number;
}

export async function loadDataset(path: string, opts: LoadDatasetOptions = {}): Promise<Dataset> {
  const format = extname(path).toLowerCase();
  if (format !== ".tsv" && format !== ".csv" && format !== ".jsonl") {
    throw fail("dataset_unsupported_format", path, undefined, "unsupported file type (expected .tsv, .csv or .jsonl)");
  }
  if (opts.labels !== undefined && opts.task === "regression") {
    throw fail("dataset_invalid_options", path, undefined, "a label set was given for a regression dataset");
  }

  let content: string;
  try {
    content = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw fail("dataset_not_found", path, undefined, "file not found");
    throw fail("dataset_unreadable", path, undefined, `cannot read file (${code ?? String(e)})`);
  }
  return parseDataset(content, format, path, opts);
}

export type DatasetFormat = ".tsv" | ".csv" | ".jsonl";

/**
 * The pure half of `loadDataset`: `content` in `format`, with `path` naming it in error messages
 * (the server's eval-set upload parses request bodies with it).
 */
export function parseDataset(
  content: string,
  format: DatasetFormat,
  path: string,
  opts: LoadDatasetOptions = {},
): Dataset {
  if (opts.labels !== undefined && opts.task === "regression") {
    throw fail("dataset_invalid_options", path, undefined, "a label set was given for a regression dataset");
  }
  if (content.charCodeAt(0) === 0xfeff) content = content.slice(1); // BOM from Excel & co.
  if (content.trim() === "") throw fail("dataset_empty", path, 1, "file is empty");

  const raw =
    format === ".jsonl"
      ? parseJsonl(content, path)
      : fromTable(format === ".tsv" ? splitTsv(content) : parseCsv(content, path), path);
  if (raw.length === 0) throw fail("dataset_empty", path, undefined, "file has no examples");

  const hasPairs = raw[0].pair !== undefined;
  for (const r of raw) {
    if ((r.pair !== undefined) !== hasPairs) {
      throw fail(
        "dataset_inconsistent_pairs",
        path,
        r.line,
        hasPairs ? "missing text_pair (earlier lines have one)" : "has a text_pair but earlier lines do not",
      );
    }
  }

  const multiLabel = Array.isArray(raw[0].label);
  for (const r of raw) {
    if (Array.isArray(r.label) !== multiLabel) {
      throw fail(
        "dataset_bad_label",
        path,
        r.line,
        multiLabel
          ? 'has "label" but earlier lines have "labels" (multi-label)'
          : 'has "labels" (multi-label) but earlier lines have "label"',
      );
    }
  }
  if (multiLabel) {
    if (opts.task === "regression")
      throw fail("dataset_invalid_options", path, undefined, "a multi-label file cannot be read as regression");
    return toMultiLabel(raw, path, hasPairs, opts.labels);
  }
  const task =
    opts.task ?? (opts.labels === undefined && typeof raw[0].label === "number" ? "regression" : "classification");
  return task === "regression" ? toRegression(raw, path, hasPairs) : toClassification(raw, path, hasPairs, opts.labels);
}

function checkFixedLabels(path: string, fixed?: string[]): void {
  if (fixed !== undefined && (fixed.length === 0 || new Set(fixed).size !== fixed.length)) {
    throw fail(
      "dataset_invalid_options",
      path,
      undefined,
      "the given label set must be non-empty and without duplicates",
    );
  }
}

function toMultiLabel(raw: RawExample[], path: string, hasPairs: boolean, fixed?: string[]): Dataset {
  checkFixedLabels(path, fixed);
  const allowed = fixed && new Set(fixed);
  const seen = new Set<string>();
  const examples = raw.map((r): Example => {
    const names = r.label as string[];
    if (new Set(names).size !== names.length)
      throw fail("dataset_bad_label", path, r.line, `a label is listed twice in ${JSON.stringify(names)}`);
    for (const name of names) {
      if (allowed && !allowed.has(name))
        throw fail(
          "dataset_unknown_label",
          path,
          r.line,
          `unknown label ${JSON.stringify(name)} (expected some of ${fixed.join(", ")})`,
        );
      seen.add(name);
    }
    return withLabel(r, names);
  });
  if (!fixed && seen.size === 0) throw fail("dataset_bad_label", path, undefined, "no example has any label");
  return { path, examples, labels: fixed ? [...fixed] : [...seen].sort(compareLabels), hasPairs, multiLabel: true };
}

function toRegression(raw: RawExample[], path: string, hasPairs: boolean): Dataset {
  const examples = raw.map((r): Example => {
    const value =
      typeof r.label === "number"
        ? r.label
        : typeof r.label === "string" && r.label.trim() !== ""
          ? Number(r.label)
          : NaN;
    if (!Number.isFinite(value)) {
      throw fail(
        "dataset_bad_label",
        path,
        r.line,
        `regression label ${JSON.stringify(r.label)} is not a finite number`,
      );
    }
    return withLabel(r, value);
  });
  return { path, examples, labels: [], hasPairs, multiLabel: false };
}

function toClassification(raw: RawExample[], path: string, hasPairs: boolean, fixed?: string[]): Dataset {
  checkFixedLabels(path, fixed);
  const allowed = fixed && new Set(fixed);
  // Inferred classification with JSON labels: a file mixing numbers and strings is almost surely a
  // mistake (e.g. 1 vs "1"), so refuse rather than silently merge or split classes.
  const firstType = typeof raw[0].label;
  const seen = new Set<string>();
  const examples = raw.map((r): Example => {
    if (fixed === undefined && typeof r.label !== firstType) {
      throw fail(
        "dataset_bad_label",
        path,
        r.line,
        `label ${JSON.stringify(r.label)} is a ${typeof r.label}, earlier labels are ${firstType}s`,
      );
    }
    const label = String(r.label);
    if (allowed && !allowed.has(label)) {
      throw fail(
        "dataset_unknown_label",
        path,
        r.line,
        `unknown label ${JSON.stringify(label)} (expected one of ${fixed.join(", ")})`,
      );
    }
    seen.add(label);
    return withLabel(r, label);
  });
  return { path, examples, labels: fixed ? [...fixed] : [...seen].sort(compareLabels), hasPairs, multiLabel: false };
}

function withLabel(r: RawExample, label: string | number | string[]): Example {
  return r.pair === undefined
    ? { text: r.text, label, line: r.line }
    : { text: r.text, pair: r.pair, label, line: r.line };
}

const NUMBER_LIKE = /^-?\d+(\.\d+)?$/;

/** Number-like names ("0", "2", "10", "2.5") in numeric order, then the rest by code unit: transitive and locale-free. */
function compareLabels(a: string, b: string): number {
  const ai = NUMBER_LIKE.test(a);
  const bi = NUMBER_LIKE.test(b);
  if (ai && bi) return Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0);
  if (ai !== bi) return ai ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------- tables (TSV / CSV) ----------

interface Row {
  line: number;
  cells: string[];
}

/** GLUE TSV: no quoting, so a plain split; CRLF tolerated; empty lines skipped. */
function splitTsv(content: string): Row[] {
  const rows: Row[] = [];
  const lines = content.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (text !== "") rows.push({ line: i + 1, cells: text.split("\t") });
  }
  return rows;
}

/** RFC 4180 reader; tracks physical line numbers so errors can point into the file. */
function parseCsv(content: string, path: string): Row[] {
  const rows: Row[] = [];
  const n = content.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const start = line;
    const cells: string[] = [];
    let sawQuote = false;
    for (;;) {
      let field: string;
      if (content[i] === '"') {
        sawQuote = true;
        const quoteLine = line;
        field = "";
        i++;
        for (;;) {
          const close = content.indexOf('"', i);
          if (close < 0)
            throw fail("dataset_unterminated_quote", path, quoteLine, "unterminated quoted field starts here");
          const chunk = content.slice(i, close);
          line += countNewlines(chunk);
          field += chunk;
          if (content[close + 1] === '"') {
            field += '"'; // doubled quote = literal quote
            i = close + 2;
          } else {
            i = close + 1;
            break;
          }
        }
        const c = content[i];
        if (i < n && c !== "," && c !== "\n" && c !== "\r") {
          throw fail("dataset_bad_csv", path, line, `unexpected ${JSON.stringify(c)} after a closing quote`);
        }
      } else {
        const from = i;
        while (i < n && content[i] !== "," && content[i] !== "\n" && content[i] !== "\r") i++;
        field = content.slice(from, i);
      }
      cells.push(field);
      if (i < n && content[i] === ",") {
        i++;
        continue;
      }
      // End of record: CRLF, LF, lone CR, or end of input.
      if (content[i] === "\r") i++;
      if (content[i] === "\n") i++;
      line++;
      break;
    }
    const blank = cells.length === 1 && cells[0] === "" && !sawQuote;
    if (!blank) rows.push({ line: start, cells });
  }
  return rows;
}

function countNewlines(s: string): number {
  let k = 0;
  for (let j = s.indexOf("\n"); j >= 0; j = s.indexOf("\n", j + 1)) k++;
  return k;
}

/** Header resolution and per-row checks shared by TSV and CSV. */
function fromTable(rows: Row[], path: string): RawExample[] {
  const [header, ...body] = rows;
  const names = header.cells.map((c) => c.trim());
  const at = (name: string): number => names.indexOf(name);
  const headerLine = header.line;

  for (let k = 0; k < names.length; k++) {
    if (names[k] !== "" && names.indexOf(names[k]) !== k) {
      throw fail("dataset_bad_header", path, headerLine, `duplicate column "${names[k]}"`);
    }
  }
  let textCol: number;
  let pairCol = -1;
  if (at("text") >= 0) {
    textCol = at("text");
    pairCol = at("text_pair");
  } else if (at("sentence") >= 0) {
    textCol = at("sentence");
  } else if (at("sentence1") >= 0) {
    textCol = at("sentence1");
    pairCol = at("sentence2");
    if (pairCol < 0) throw missingColumn(path, headerLine, names, `column "sentence2" (required with "sentence1")`);
  } else {
    throw missingColumn(path, headerLine, names, `a text column ("text", "sentence" or "sentence1")`);
  }
  const multiCol = at("labels");
  const labelCol = multiCol >= 0 ? multiCol : at("label");
  if (labelCol < 0) {
    throw missingColumn(
      path,
      headerLine,
      names,
      `column "label" or "labels" (a GLUE test split has no labels and cannot be used for training)`,
    );
  }
  if (multiCol >= 0 && at("label") >= 0)
    throw fail("dataset_bad_header", path, headerLine, 'both "label" and "labels" columns: keep one');

  return body.map((row): RawExample => {
    if (row.cells.length !== names.length) {
      throw fail(
        "dataset_column_count",
        path,
        row.line,
        `has ${row.cells.length} columns, the header has ${names.length}`,
      );
    }
    const text = row.cells[textCol];
    if (text.trim() === "")
      throw fail("dataset_empty_text", path, row.line, `empty text in column "${names[textCol]}"`);
    const cell = row.cells[labelCol].trim();
    if (cell === "" && multiCol < 0) throw fail("dataset_missing_label", path, row.line, "missing label");
    const label = multiCol < 0 ? cell : splitLabelList(cell, path, row.line);
    if (pairCol < 0) return { text, label, line: row.line };
    const pair = row.cells[pairCol];
    if (pair.trim() === "")
      throw fail("dataset_empty_text", path, row.line, `empty text in column "${names[pairCol]}"`);
    return { text, pair, label, line: row.line };
  });
}

/** A `labels` cell: names separated by "|", trimmed; empty = no label applies. */
function splitLabelList(cell: string, path: string, line: number): string[] {
  if (cell === "") return [];
  const names = cell.split("|").map((s) => s.trim());
  if (names.some((s) => s === ""))
    throw fail("dataset_bad_label", path, line, `empty name in labels ${JSON.stringify(cell)}`);
  return names;
}

function missingColumn(path: string, line: number, names: string[], what: string): SktError {
  return fail("dataset_missing_column", path, line, `header lacks ${what}; found: ${names.join(", ")}`);
}

// ---------- JSONL ----------

function parseJsonl(content: string, path: string): RawExample[] {
  const out: RawExample[] = [];
  const lines = content.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const src = lines[i];
    if (src.trim() === "") continue;
    const line = i + 1;
    let obj: unknown;
    try {
      obj = JSON.parse(src);
    } catch (e) {
      throw fail("dataset_invalid_json", path, line, `invalid JSON (${(e as Error).message})`);
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
      throw fail("dataset_invalid_json", path, line, "expected a JSON object");
    }
    const rec = obj as Record<string, unknown>;
    const textKey = rec.text !== undefined ? "text" : "sentence";
    const text = rec[textKey];
    if (text === undefined || text === null)
      throw fail("dataset_missing_column", path, line, `missing "text" (or "sentence")`);
    if (typeof text !== "string") throw fail("dataset_bad_text", path, line, `"${textKey}" must be a string`);
    if (text.trim() === "") throw fail("dataset_empty_text", path, line, `empty "${textKey}"`);

    let pair: string | undefined;
    if (rec.text_pair !== undefined && rec.text_pair !== null) {
      if (typeof rec.text_pair !== "string") throw fail("dataset_bad_text", path, line, `"text_pair" must be a string`);
      if (rec.text_pair.trim() === "") throw fail("dataset_empty_text", path, line, `empty "text_pair"`);
      pair = rec.text_pair;
    }

    if (rec.labels !== undefined) {
      if (rec.label !== undefined) throw fail("dataset_bad_label", path, line, 'both "label" and "labels": keep one');
      const names = rec.labels;
      if (!Array.isArray(names) || names.some((x) => typeof x !== "string" || x.trim() === "")) {
        throw fail(
          "dataset_bad_label",
          path,
          line,
          `"labels" must be an array of non-empty strings, got ${JSON.stringify(names)}`,
        );
      }
      const trimmed = (names as string[]).map((x) => x.trim());
      out.push(pair === undefined ? { text, label: trimmed, line } : { text, pair, label: trimmed, line });
      continue;
    }
    const label = rec.label;
    if (label === undefined || label === null || (typeof label === "string" && label.trim() === "")) {
      throw fail("dataset_missing_label", path, line, "missing label");
    }
    if (typeof label === "number") {
      if (!Number.isFinite(label)) throw fail("dataset_bad_label", path, line, "label must be finite");
    } else if (typeof label !== "string") {
      throw fail("dataset_bad_label", path, line, `label must be a string or a number, got ${JSON.stringify(label)}`);
    }
    const labelValue = typeof label === "string" ? label.trim() : label;
    out.push(pair === undefined ? { text, label: labelValue, line } : { text, pair, label: labelValue, line });
  }
  return out;
}

// ---------- errors ----------

function fail(code: string, path: string, line: number | undefined, message: string): SktError {
  const where = line === undefined ? path : `${path}, line ${line}`;
  return new SktError("bad_request", code, `${where}: ${message}`, line === undefined ? { path } : { path, line });
}
