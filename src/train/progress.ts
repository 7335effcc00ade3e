/**
 * Training progress on the console: a bar on a terminal; elsewhere (CI, Docker, nohup) one line
 * every N seconds and one per evaluation; `json` for machines (one JSON object per line); `quiet`.
 */
import cliProgress from "cli-progress";
import type { ProgressEvent } from "./trainer.js";

export type ProgressMode = "bar" | "lines" | "json" | "quiet";

export interface ProgressReporterOptions {
  mode: ProgressMode;
  /** Lines and JSON: at most one progress line per this many seconds (evaluations always print). */
  everySeconds: number;
  /** Where lines go (default: stdout). */
  write?: (line: string) => void;
  /** Milliseconds clock (default: performance.now). */
  now?: () => number;
}

export interface ProgressReporter {
  onProgress(p: ProgressEvent): void;
  stop(): void;
}

/** "1h 02m", "5m 38s", "12s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** The mode for a run: the flags first, then whether anyone is watching a terminal. */
export function progressMode(o: { quiet?: boolean; json?: boolean }, isTTY: boolean): ProgressMode {
  if (o.json) return "json";
  if (o.quiet) return "quiet";
  return isTTY ? "bar" : "lines";
}

export function createProgressReporter(o: ProgressReporterOptions): ProgressReporter {
  const write = o.write ?? ((line: string) => console.log(line));
  const now = o.now ?? (() => performance.now());
  if (o.mode === "quiet") return { onProgress: () => {}, stop: () => {} };
  if (o.mode === "bar") return barReporter();

  // The rate is measured from the first event on (its step's own time is unknown).
  let start: { t: number; step: number } | undefined;
  let lastLine = -Infinity;
  let dev: number | null = null;
  const eta = (p: ProgressEvent, t: number) =>
    start && p.step > start.step ? ((t - start.t) / 1000 / (p.step - start.step)) * (p.totalSteps - p.step) : NaN;
  return {
    onProgress(p) {
      const t = now();
      start ??= { t, step: p.step };
      if (p.eval) {
        dev = p.eval.score;
        if (o.mode === "json")
          write(
            JSON.stringify({
              event: "eval",
              step: p.step,
              total_steps: p.totalSteps,
              score: p.eval.score,
              report: p.eval.report,
            }),
          );
        else write(`eval at step ${p.step}/${p.totalSteps} · dev ${p.eval.score.toFixed(4)}`);
        return;
      }
      const last = p.step === p.totalSteps;
      if (!last && t - lastLine < o.everySeconds * 1000) return;
      lastLine = t;
      const etaS = eta(p, t);
      if (o.mode === "json") {
        write(
          JSON.stringify({
            event: "progress",
            step: p.step,
            total_steps: p.totalSteps,
            epoch: p.epoch,
            loss: p.loss,
            examples_per_sec: p.examplesPerSec,
            eta_seconds: Number.isFinite(etaS) ? Math.round(etaS) : null,
            dev_score: dev,
          }),
        );
      } else {
        write(
          `step ${p.step}/${p.totalSteps} · epoch ${p.epoch + 1} · loss ${p.loss.toFixed(4)} · ${p.examplesPerSec.toFixed(0)} ex/s · ETA ${formatDuration(etaS)} · dev ${dev === null ? "–" : dev.toFixed(4)}`,
        );
      }
    },
    stop() {},
  };
}

function barReporter(): ProgressReporter {
  const bar = new cliProgress.SingleBar(
    { format: "train |{bar}| {value}/{total} steps · loss {loss} · {speed} ex/s · ETA {eta_formatted} · dev {dev}" },
    cliProgress.Presets.shades_classic,
  );
  let dev = "–";
  let started = false;
  return {
    onProgress(p) {
      if (p.eval) dev = p.eval.score.toFixed(4);
      if (!started) {
        bar.start(p.totalSteps, 0, { loss: "–", speed: "–", dev });
        started = true;
      }
      bar.update(p.step, {
        loss: Number.isFinite(p.loss) ? p.loss.toFixed(4) : "–",
        speed: p.examplesPerSec.toFixed(0),
        dev,
      });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
