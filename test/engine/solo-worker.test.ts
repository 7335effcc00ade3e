/**
 * The solo worker's turns (src/engine/runner.ts, SKT_SOLO_THREADS): with fake workers whose runs
 * the test holds and releases, it runs a lone request while the others are idle, the others run a
 * burst side by side, the two never run at once, each covers for the other while it is down, and
 * under random traffic every row gets its own answer with none of those rules broken.
 */
import { EventEmitter } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import type { BackboneAssets, BackboneBatch, BackboneOutputs } from "../../src/backbone/backbone.js";
import { USE_LITE_DIMS } from "../../src/backbone/dims.js";
import { Batcher } from "../../src/engine/batcher.js";
import type { InferenceWorker } from "../../src/engine/inference-worker.js";
import { Runner, type Row } from "../../src/engine/runner.js";
import { seededRandom } from "../helpers/numeric.js";

const D = 4;
const DIMS = { ...USE_LITE_DIMS, embedDim: D };
/** Token id t's embedding starts with t: a fake run can tell which row is which. */
const EMBEDDINGS = new Float32Array(DIMS.vocabSize * D).map((_, i) => (i % D === 0 ? i / D : 0));
const MAX_BATCH = 4;

/** Who runs what, checked at every start: the solo worker never runs beside another. */
class Timeline {
  readonly running = new Set<FakeWorker>();
  readonly violations: string[] = [];
  /** Largest number of non-solo workers seen running at once. */
  maxOthersTogether = 0;
  start(w: FakeWorker): void {
    const others = [...this.running].filter((x) => x !== w);
    if (w.solo && others.length > 0) this.violations.push(`solo started beside ${others.map((x) => x.name)}`);
    if (!w.solo && others.some((x) => x.solo)) this.violations.push(`${w.name} started beside the solo worker`);
    this.running.add(w);
    this.maxOthersTogether = Math.max(this.maxOthersTogether, [...this.running].filter((x) => !x.solo).length);
  }
  end(w: FakeWorker): void {
    this.running.delete(w);
  }
}

/** A CPU worker whose every run waits until the test (or `autoMs`) lets it finish; answers each row with its first id. */
class FakeWorker extends EventEmitter {
  readonly deviceInfo = { device: "cpu" };
  readonly graphInput = "embeds";
  readonly layout = "padded";
  up = true;
  /** Rows per run, in order. */
  readonly runs: number[] = [];
  private gates: (() => void)[] = [];
  constructor(
    readonly name: string,
    readonly solo: boolean,
    private readonly timeline: Timeline,
    /** Finish each run after this many ms by itself instead of waiting for `finish()`. */
    private readonly autoMs?: () => number,
    /** The run time it reports (the runner's estimate of its runs). */
    private readonly reportedMs = 1,
  ) {
    super();
  }
  isReady(): boolean {
    return this.up;
  }
  get pending(): number {
    return this.gates.length;
  }
  /** Lets the oldest held run finish. */
  finish(): void {
    this.gates.shift()?.();
  }
  async run(batch: BackboneBatch): Promise<{ outputs: BackboneOutputs; runMs: number }> {
    this.timeline.start(this);
    this.runs.push(batch.batch);
    await new Promise<void>((resolve) => {
      if (this.autoMs) setTimeout(resolve, this.autoMs());
      else this.gates.push(resolve);
    });
    this.timeline.end(this);
    const pooled = new Float32Array(batch.batch * D);
    for (let b = 0; b < batch.batch; b++) pooled[b * D] = batch.inputsEmbeds![b * batch.seq * D];
    return { outputs: { pooled }, runMs: this.reportedMs };
  }
  /** Goes down or comes back, telling the runner as a real worker does. */
  setUp(up: boolean): void {
    this.up = up;
    this.emit(up ? "ready" : "down");
  }
}

interface Rig {
  timeline: Timeline;
  pair: FakeWorker[];
  solo: FakeWorker;
  batcher: Batcher<Row>;
  submit(id: number): Promise<number>;
  /** One request of several rows: all of them queue at once. */
  submitAll(ids: number[]): Promise<number[]>;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const rig of rigs.splice(0)) {
    for (const w of [...rig.pair, rig.solo]) {
      w.setUp(true);
      while (w.pending > 0) w.finish();
    }
    await rig.batcher.drain();
  }
});

function startRig(autoMs?: () => number, maxWaitMs = 0, soloRunMs = 1): Rig {
  const timeline = new Timeline();
  const pair = [0, 1].map((i) => new FakeWorker(`worker ${i}`, false, timeline, autoMs));
  const solo = new FakeWorker("solo", true, timeline, autoMs, soloRunMs);
  const batcher = new Batcher<Row>({
    maxBatchSize: MAX_BATCH,
    maxBatchTokens: 4096,
    maxWaitMs,
    maxPaddingRatio: 10,
    queueSize: 1024,
    requestTimeoutMs: 60_000,
  });
  const runner = new Runner(
    pair as unknown as InferenceWorker[],
    batcher,
    { assets: { dims: DIMS, embeddings: EMBEDDINGS } as unknown as BackboneAssets },
    1,
    { worker: solo as unknown as InferenceWorker, maxQueue: MAX_BATCH },
  );
  runner.start();
  const submit = async (id: number) =>
    (await batcher.submit([{ adapter: null, ids: [id, 1], output: "pooled", length: 2 }]))[0][0];
  const submitAll = async (ids: number[]) =>
    (await batcher.submit(ids.map((id) => ({ adapter: null, ids: [id, 1], output: "pooled", length: 2 })))).map(
      (out) => out[0],
    );
  const rig = { timeline, pair, solo, batcher, submit, submitAll };
  rigs.push(rig);
  return rig;
}

const tick = () => new Promise((r) => setImmediate(r));

describe("the solo worker's turns", () => {
  it("runs a lone request while the others are idle, and the next one too", async () => {
    const { pair, solo, submit } = startRig();
    const first = submit(7);
    await tick();
    expect(solo.pending).toBe(1);
    expect(pair.map((w) => w.pending)).toEqual([0, 0]);
    solo.finish();
    expect(await first).toBe(7);
    const second = submit(8);
    await tick();
    solo.finish();
    expect(await second).toBe(8);
    expect(solo.runs).toEqual([1, 1]);
    expect(pair.flatMap((w) => w.runs)).toEqual([]);
  });

  it("leaves a burst longer than one batch to the others, side by side, and takes over once they are idle", async () => {
    const { timeline, pair, solo, submit, submitAll } = startRig();
    // 3 batches' worth at once: more than one batch waits, so the single-thread workers take it.
    const ids = Array.from({ length: 3 * MAX_BATCH }, (_, i) => 10 + i);
    const answers = submitAll(ids);
    await tick();
    expect(pair.map((w) => w.pending)).toEqual([1, 1]);
    expect(solo.pending).toBe(0);
    // One of them frees while the other runs: it goes on with the rest (the solo worker would have to wait).
    pair[0].finish();
    await tick();
    expect(pair.map((w) => w.pending)).toEqual([1, 1]);
    expect(solo.pending).toBe(0);
    pair[0].finish();
    pair[1].finish();
    expect(await answers).toEqual(ids);
    expect(pair.flatMap((w) => w.runs)).toEqual([MAX_BATCH, MAX_BATCH, MAX_BATCH]);
    // Everyone idle again: a lone request is the solo worker's.
    const lone = submit(99);
    await tick();
    expect(solo.pending).toBe(1);
    solo.finish();
    expect(await lone).toBe(99);
    expect(timeline.violations).toEqual([]);
    expect(timeline.maxOthersTogether).toBe(2);
  });

  it("holds the others back while it runs, even when rows pile up, then lets them take the pile", async () => {
    const { timeline, pair, solo, submit } = startRig();
    const lone = submit(1);
    await tick();
    expect(solo.pending).toBe(1);
    const pile = Array.from({ length: 2 * MAX_BATCH + 1 }, (_, i) => submit(20 + i));
    await tick();
    expect(pair.map((w) => w.pending)).toEqual([0, 0]);
    solo.finish();
    expect(await lone).toBe(1);
    await tick();
    // More than one batch waited when it finished: the pile goes to the others, not back to it.
    expect(pair.map((w) => w.pending)).toEqual([1, 1]);
    expect(solo.pending).toBe(0);
    while (pair.some((w) => w.pending > 0) || solo.pending > 0) {
      for (const w of [...pair, solo]) w.finish();
      await tick();
    }
    expect(await Promise.all(pile)).toEqual(Array.from({ length: 2 * MAX_BATCH + 1 }, (_, i) => 20 + i));
    expect(timeline.violations).toEqual([]);
  });

  it("is covered for by the others while it is down, and covers for them while they are", async () => {
    const { pair, solo, submit, submitAll } = startRig();
    solo.setUp(false);
    const lone = submit(3);
    await tick();
    expect(solo.pending).toBe(0);
    expect(pair[0].pending + pair[1].pending).toBe(1);
    pair.forEach((w) => w.finish());
    expect(await lone).toBe(3);
    solo.setUp(true);
    pair.forEach((w) => w.setUp(false));
    const ids = Array.from({ length: 3 * MAX_BATCH }, (_, i) => 40 + i);
    const burst = submitAll(ids);
    await tick();
    expect(solo.pending).toBe(1);
    while (solo.pending > 0) {
      solo.finish();
      await tick();
    }
    expect(await burst).toEqual(ids);
    expect(solo.runs.slice(-3)).toEqual([MAX_BATCH, MAX_BATCH, MAX_BATCH]);
  });

  it("gives up its turns while rows keep arriving during its runs, and takes them again once arrivals slow", async () => {
    // Its runs say 20 ms: once rows have kept arriving during them, a lone row goes to the others.
    const { pair, solo, submit } = startRig(undefined, 0, 20);
    const answers = [submit(0)];
    await tick();
    expect(solo.pending).toBe(1);
    // Each run sees one row arrive and wait for it, and rows come quickly: within a few runs both
    // estimates (rows per run lately, and run time ÷ time between arrivals) pass half a row.
    let soloRuns = 1;
    for (let id = 1; id < 40 && solo.pending === 1; id++) {
      answers.push(submit(id));
      await tick();
      solo.finish();
      await tick();
      if (solo.pending === 1) soloRuns++;
    }
    expect(solo.pending).toBe(0);
    expect(soloRuns).toBeGreaterThanOrEqual(4); // 1 − 0.8^k rows per run: above 0.5 from the fourth run on
    expect(soloRuns).toBeLessThan(40);
    expect(pair[0].pending + pair[1].pending).toBe(1);
    pair.forEach((w) => w.finish());
    expect(await Promise.all(answers)).toEqual(answers.map((_, i) => i));
    // A quiet spell longer than two of its runs: it predicts under half a row per run, its turn again.
    await new Promise((r) => setTimeout(r, 60));
    const quiet = submit(8);
    await tick();
    expect(solo.pending).toBe(1);
    solo.finish();
    expect(await quiet).toBe(8);
  });

  it("under random traffic answers every row with its own output and never runs beside the others", async () => {
    const random = seededRandom(5);
    const { timeline, pair, solo, submit } = startRig(() => random() * 3, 1);
    const answers: Promise<number>[] = [];
    const expected: number[] = [];
    for (let i = 0; i < 300; i++) {
      // Quiet spells and bursts.
      const burst = random() < 0.15 ? 1 + Math.floor(random() * 12) : 1;
      for (let k = 0; k < burst; k++) {
        const id = 100 + answers.length;
        expected.push(id);
        answers.push(submit(id));
      }
      await new Promise((r) => setTimeout(r, random() < 0.3 ? 4 : 0));
    }
    expect(await Promise.all(answers)).toEqual(expected);
    expect(timeline.violations).toEqual([]);
    expect(solo.runs.length).toBeGreaterThan(0);
    expect(timeline.maxOthersTogether).toBe(2);
    expect(pair.every((w) => w.runs.length > 0)).toBe(true);
  });
});
