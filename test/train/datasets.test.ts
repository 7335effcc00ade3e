import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadDataset } from "../../src/train/datasets.js";
import { SktError } from "../../src/errors.js";
import { SST2_DIR } from "../../scripts/lib/paths.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "skt-datasets-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content, "utf8");
  return path;
}

/** Loads and expects an SktError("bad_request", code) whose message names the file and the line. */
async function expectError(path: string, code: string, line?: number, opts?: Parameters<typeof loadDataset>[1]) {
  const err = await loadDataset(path, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SktError);
  const e = err as SktError;
  expect(e.kind).toBe("bad_request");
  expect(e.code).toBe(code);
  expect(e.message).toContain(path);
  if (line !== undefined) {
    expect(e.message).toContain(`line ${line}`);
    expect(e.details).toMatchObject({ path, line });
  }
  return e;
}

describe("loadDataset: TSV", () => {
  it("parses GLUE single-sentence TSV, keeping numeric labels as strings", async () => {
    const path = await fixture("single.tsv", 'sentence\tlabel\nit \'s "great" .\t1\nbad , bad film\t0\n\n\n');
    const ds = await loadDataset(path);
    expect(ds).toEqual({
      path,
      hasPairs: false,
      multiLabel: false,
      labels: ["0", "1"],
      examples: [
        { text: 'it \'s "great" .', label: "1", line: 2 },
        { text: "bad , bad film", label: "0", line: 3 },
      ],
    });
  });

  it("parses sentence1/sentence2 pairs with extra columns and CRLF", async () => {
    const path = await fixture(
      "pairs.tsv",
      "idx\tsentence1\tsentence2\tlabel\r\n0\ta cat\tthe cat\tentailment\r\n1\ta dog\tno dog\tcontradiction\r\n",
    );
    const ds = await loadDataset(path);
    expect(ds.hasPairs).toBe(true);
    expect(ds.labels).toEqual(["contradiction", "entailment"]);
    expect(ds.examples[1]).toEqual({ text: "a dog", pair: "no dog", label: "contradiction", line: 3 });
  });

  it("parses text/text_pair and sorts integer-like labels numerically", async () => {
    const path = await fixture("tp.tsv", "text\ttext_pair\tlabel\na\tb\t10\nc\td\t2\ne\tf\t2\ng\th\tz\ni\tj\t-1\n");
    const ds = await loadDataset(path);
    expect(ds.labels).toEqual(["-1", "2", "10", "z"]);
    expect(ds.examples[0]).toEqual({ text: "a", pair: "b", label: "10", line: 2 });
  });

  it("loads as regression when asked (STS-B style)", async () => {
    const path = await fixture("sts.tsv", "sentence1\tsentence2\tlabel\na\tb\t4.250\nc\td\t0\n");
    const ds = await loadDataset(path, { task: "regression" });
    expect(ds.labels).toEqual([]);
    expect(ds.examples.map((e) => e.label)).toEqual([4.25, 0]);
    const bad = await fixture("sts-bad.tsv", "sentence1\tsentence2\tlabel\na\tb\t4.250\nc\td\thigh\n");
    await expectError(bad, "dataset_bad_label", 3, { task: "regression" });
  });

  it("honours a fixed label set: order kept, unknown labels rejected", async () => {
    const path = await fixture("fixed.tsv", "sentence\tlabel\na\t1\nb\t1\n");
    const ds = await loadDataset(path, { labels: ["1", "0"] });
    expect(ds.labels).toEqual(["1", "0"]);
    const bad = await fixture("fixed-bad.tsv", "sentence\tlabel\na\t1\nb\t2\n");
    const e = await expectError(bad, "dataset_unknown_label", 3, { labels: ["0", "1"] });
    expect(e.message).toContain('"2"');
  });

  it("errors name the file and line", async () => {
    await expectError(await fixture("cols.tsv", "sentence\tlabel\na\t1\nb\t0\textra\n"), "dataset_column_count", 3);
    await expectError(await fixture("empty-text.tsv", "sentence\tlabel\na\t1\n  \t0\n"), "dataset_empty_text", 3);
    await expectError(await fixture("no-label.tsv", "sentence\tlabel\na\t1\n\nb\t \n"), "dataset_missing_label", 4);
    await expectError(
      await fixture("empty-pair.tsv", "sentence1\tsentence2\tlabel\na\t\t1\n"),
      "dataset_empty_text",
      2,
    );
    // A GLUE test split: index + sentence, no label column.
    const e = await expectError(await fixture("test.tsv", "index\tsentence\n0\ta\n"), "dataset_missing_column", 1);
    expect(e.message).toContain('"label"');
    await expectError(await fixture("notext.tsv", "question\tlabel\na\t1\n"), "dataset_missing_column", 1);
    await expectError(await fixture("s1only.tsv", "sentence1\tlabel\na\t1\n"), "dataset_missing_column", 1);
    await expectError(await fixture("dup.tsv", "sentence\tlabel\tlabel\na\t1\t1\n"), "dataset_bad_header", 1);
  });

  it("rejects missing, empty, header-only and unsupported files", async () => {
    await expectError(join(dir, "nope.tsv"), "dataset_not_found");
    await expectError(await fixture("empty.tsv", ""), "dataset_empty", 1);
    await expectError(await fixture("blank.tsv", "\n\n  \n"), "dataset_empty", 1);
    await expectError(await fixture("header-only.tsv", "sentence\tlabel\n"), "dataset_empty");
    await expectError(await fixture("data.txt", "sentence\tlabel\na\t1\n"), "dataset_unsupported_format");
  });
});

describe("loadDataset: CSV", () => {
  it("handles RFC 4180 quoting: commas, doubled quotes, newlines, CRLF, empty quoted fields", async () => {
    const content =
      "text,label,note\r\n" +
      '"hello, world",pos,\r\n' +
      '"she said ""hi""",neg,""\r\n' +
      '"line one\r\nline two\nline three",pos,x\r\n' +
      'plain "inner" quote,neg,"a,b"\r\n' +
      "\r\n" +
      "last,pos,no-newline";
    const ds = await loadDataset(await fixture("q.csv", content));
    expect(ds.hasPairs).toBe(false);
    expect(ds.labels).toEqual(["neg", "pos"]);
    expect(ds.examples).toEqual([
      { text: "hello, world", label: "pos", line: 2 },
      { text: 'she said "hi"', label: "neg", line: 3 },
      { text: "line one\r\nline two\nline three", label: "pos", line: 4 },
      { text: 'plain "inner" quote', label: "neg", line: 7 },
      { text: "last", label: "pos", line: 9 },
    ]);
  });

  it("parses pairs", async () => {
    const ds = await loadDataset(await fixture("p.csv", 'sentence1,sentence2,label\n"a, b","c\n d",1\n'));
    expect(ds.hasPairs).toBe(true);
    expect(ds.examples).toEqual([{ text: "a, b", pair: "c\n d", label: "1", line: 2 }]);
  });

  it("errors name the file and line", async () => {
    // Unterminated quote: the error points where the quote opened, not at end of file.
    await expectError(
      await fixture("unterminated.csv", 'text,label\na,1\n"never closed,0\nb,1\nc,0\n'),
      "dataset_unterminated_quote",
      3,
    );
    // Line numbers after a multi-line field count physical lines.
    await expectError(await fixture("count.csv", 'text,label\n"a\nb\nc",1\nd,1,extra\n'), "dataset_column_count", 5);
    await expectError(await fixture("after-quote.csv", 'text,label\n"a"b,1\n'), "dataset_bad_csv", 2);
    await expectError(await fixture("nolabel.csv", 'text,label\n"a",\n'), "dataset_missing_label", 2);
    await expectError(await fixture("emptytext.csv", 'text,label\nok,1\n"",1\n'), "dataset_empty_text", 3);
    await expectError(await fixture("nocol.csv", "text,target\na,1\n"), "dataset_missing_column", 1);
  });
});

describe("loadDataset: JSONL", () => {
  it("parses string labels, sentence alias, pairs and skips blank lines", async () => {
    const path = await fixture(
      "a.jsonl",
      '{"text":"good","text_pair":"x","label":"pos"}\n\n{"text":"bad","text_pair":"y","label":"neg","id":7}\n   \n',
    );
    const ds = await loadDataset(path);
    expect(ds).toEqual({
      path,
      hasPairs: true,
      multiLabel: false,
      labels: ["neg", "pos"],
      examples: [
        { text: "good", pair: "x", label: "pos", line: 1 },
        { text: "bad", pair: "y", label: "neg", line: 3 },
      ],
    });
    const alias = await loadDataset(await fixture("alias.jsonl", '{"sentence":"s","label":"a"}\n'));
    expect(alias.examples).toEqual([{ text: "s", label: "a", line: 1 }]);
  });

  it("numeric labels mean regression unless classification is asked for", async () => {
    const path = await fixture("num.jsonl", '{"text":"a","label":0.5}\n{"text":"b","label":3}\n');
    const reg = await loadDataset(path);
    expect(reg.labels).toEqual([]);
    expect(reg.examples.map((e) => e.label)).toEqual([0.5, 3]);
    const cls = await loadDataset(path, { task: "classification" });
    expect(cls.labels).toEqual(["0.5", "3"]);
    expect(cls.examples.map((e) => e.label)).toEqual(["0.5", "3"]);
    const fixed = await loadDataset(await fixture("int.jsonl", '{"text":"a","label":0}\n{"text":"b","label":1}\n'), {
      labels: ["0", "1"],
    });
    expect(fixed.examples.map((e) => e.label)).toEqual(["0", "1"]);
  });

  it("errors name the file and line", async () => {
    await expectError(
      await fixture("badjson.jsonl", '{"text":"a","label":"x"}\n{"text": "b", label: "y"}\n'),
      "dataset_invalid_json",
      2,
    );
    await expectError(
      await fixture("array.jsonl", '{"text":"a","label":"x"}\n\n["b","y"]\n'),
      "dataset_invalid_json",
      3,
    );
    await expectError(
      await fixture("nolabel.jsonl", '{"text":"a","label":"x"}\n{"text":"b"}\n'),
      "dataset_missing_label",
      2,
    );
    await expectError(await fixture("nulllabel.jsonl", '{"text":"a","label":null}\n'), "dataset_missing_label", 1);
    await expectError(await fixture("notext.jsonl", '{"label":"x"}\n'), "dataset_missing_column", 1);
    await expectError(
      await fixture("emptytext.jsonl", '{"text":"a","label":"x"}\n{"text":" ","label":"x"}\n'),
      "dataset_empty_text",
      2,
    );
    await expectError(await fixture("numtext.jsonl", '{"text":5,"label":"x"}\n'), "dataset_bad_text", 1);
    await expectError(await fixture("boollabel.jsonl", '{"text":"a","label":true}\n'), "dataset_bad_label", 1);
    await expectError(
      await fixture("mixed.jsonl", '{"text":"a","label":"x"}\n{"text":"b","label":1}\n'),
      "dataset_bad_label",
      2,
    );
    await expectError(
      await fixture("mixedpairs.jsonl", '{"text":"a","text_pair":"p","label":"x"}\n{"text":"b","label":"x"}\n'),
      "dataset_inconsistent_pairs",
      2,
    );
  });
});

describe("loadDataset: SST-2", () => {
  it("loads the real dev split: 872 examples, 428 '0' and 444 '1'", async () => {
    const ds = await loadDataset(join(SST2_DIR, "dev.tsv"));
    expect(ds.examples).toHaveLength(872);
    expect(ds.labels).toEqual(["0", "1"]);
    expect(ds.hasPairs).toBe(false);
    expect(ds.examples.filter((e) => e.label === "0")).toHaveLength(428);
    expect(ds.examples.filter((e) => e.label === "1")).toHaveLength(444);
    expect(ds.examples[0]).toEqual({ text: "one long string of cliches .", label: "0", line: 2 });
  });

  it("loads the real train split with the dev label set", async () => {
    const ds = await loadDataset(join(SST2_DIR, "train.tsv"), { labels: ["0", "1"] });
    expect(ds.examples).toHaveLength(67_349);
    expect(ds.examples.filter((e) => e.label === "1")).toHaveLength(37_569);
  });
});

describe("loadDataset: multi-label", () => {
  it("reads JSONL label lists and TSV/CSV '|'-separated labels columns, none included", async () => {
    const jsonl = await loadDataset(
      await fixture(
        "ml.jsonl",
        '{"text":"a","labels":["x","y"]}\n{"text":"b","labels":[]}\n{"text":"c","labels":[" y "]}\n',
      ),
    );
    expect(jsonl).toMatchObject({ multiLabel: true, labels: ["x", "y"], hasPairs: false });
    expect(jsonl.examples.map((e) => e.label)).toEqual([["x", "y"], [], ["y"]]);
    const tsv = await loadDataset(await fixture("ml.tsv", "text\tlabels\na\tx|y\nb\t\nc\t y \n"));
    expect(tsv.examples.map((e) => e.label)).toEqual([["x", "y"], [], ["y"]]);
    const csv = await loadDataset(await fixture("ml.csv", 'text,text_pair,labels\n"a, b",c,x | z\n'));
    expect(csv).toMatchObject({ multiLabel: true, labels: ["x", "z"], hasPairs: true });
    const single = await loadDataset(await fixture("single.jsonl", '{"text":"a","label":"x"}\n'));
    expect(single.multiLabel).toBe(false);
  });

  it("honours a fixed label set (validation files) and rejects bad label lists with the line", async () => {
    const fixed = await loadDataset(await fixture("mlfixed.jsonl", '{"text":"a","labels":["y"]}\n'), {
      labels: ["x", "y"],
    });
    expect(fixed.labels).toEqual(["x", "y"]);
    await expectError(await fixture("mlunknown.jsonl", '{"text":"a","labels":["q"]}\n'), "dataset_unknown_label", 1, {
      labels: ["x", "y"],
    });
    await expectError(
      await fixture("mlmixed.jsonl", '{"text":"a","labels":["x"]}\n{"text":"b","label":"x"}\n'),
      "dataset_bad_label",
      2,
    );
    await expectError(
      await fixture("mlboth.jsonl", '{"text":"a","labels":["x"],"label":"x"}\n'),
      "dataset_bad_label",
      1,
    );
    await expectError(await fixture("mltype.jsonl", '{"text":"a","labels":"x"}\n'), "dataset_bad_label", 1);
    await expectError(await fixture("mlnum.jsonl", '{"text":"a","labels":[1]}\n'), "dataset_bad_label", 1);
    await expectError(await fixture("mltwice.jsonl", '{"text":"a","labels":["x","x"]}\n'), "dataset_bad_label", 1);
    await expectError(await fixture("mlempty.tsv", "text\tlabels\na\tx||y\n"), "dataset_bad_label", 2);
    await expectError(await fixture("mlnone.jsonl", '{"text":"a","labels":[]}\n'), "dataset_bad_label");
    await expectError(await fixture("mlcols.tsv", "text\tlabel\tlabels\na\tx\tx\n"), "dataset_bad_header", 1);
    await expectError(
      await fixture("mlreg.jsonl", '{"text":"a","labels":["x"]}\n'),
      "dataset_invalid_options",
      undefined,
      { task: "regression" },
    );
  });
});
