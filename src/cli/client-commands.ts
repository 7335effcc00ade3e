/**
 * The operator client: `skt adapters list|show|upload|rollback|activate|traffic|delete|report|eval-set|audit`, `skt classify`
 * and `skt embed`, against a running server. Readable tables by default, the server's JSON with `--json`.
 * The admin token comes from SKT_ADMIN_TOKEN (or --token) and is never printed.
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { peekMetadata } from "../adapters/format.js";
import { SktError } from "../errors.js";
import {
  SktClient,
  type EvalSetMediaType,
  type GateReport,
  type GatedUpload,
  type TaskInfo,
  type UploadResult,
  type TrafficSplitBody,
  type TrafficState,
} from "../client/client.js";
import { addFlags, type FlagSpec } from "../flags.js";
import { renderTable } from "./table.js";

export const DEFAULT_URL = "http://127.0.0.1:8080";

const URL_FLAG: FlagSpec = {
  flag: "--url",
  value: "url",
  default: DEFAULT_URL,
  env: "SKT_URL",
  meaning: "The server's base URL.",
};
const TOKEN_FLAG: FlagSpec = {
  flag: "--token",
  value: "token",
  defaultDoc: "unset",
  env: "SKT_ADMIN_TOKEN",
  meaning: "Admin bearer token (prefer the env var: flags show up in ps).",
};
const JSON_FLAG: FlagSpec = { flag: "--json", meaning: "Print the server's JSON answer instead of a table." };

interface ClientOpts {
  url?: string;
  token?: string;
  json?: boolean;
}

function usage(message: string): never {
  throw new SktError("bad_request", "invalid_arguments", message);
}

function clientFor(o: ClientOpts, admin: boolean): SktClient {
  const token = o.token ?? process.env.SKT_ADMIN_TOKEN;
  if (admin && !token) usage("the admin API needs a token: set SKT_ADMIN_TOKEN (or pass --token)");
  return new SktClient({ url: o.url ?? process.env.SKT_URL ?? DEFAULT_URL, token: token || undefined });
}

function print(o: ClientOpts, json: unknown, text: () => string): void {
  console.log(o.json ? JSON.stringify(json, null, 2) : text());
}

/** A whole number ≥ 1 from the command line, or a usage error naming the flag. */
function positiveInteger(value: string, what: string, kind = "a version number (1, 2, …)"): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) usage(`${what} must be ${kind}, got "${value}"`);
  return Number(value);
}

function infoLine(i: TaskInfo): string {
  return `task ${i.task} v${i.version} is current (${i.variant}, ${i.problem_type}, labels ${i.labels.join(", ") || "-"}, ${i.parameters.toLocaleString("en-US")} parameters)`;
}

function uploadLine(r: UploadResult | GatedUpload): string {
  const current = r.current === null ? "none" : `v${r.current}`;
  const head =
    "gate" in r && r.gate
      ? `task ${r.task} v${r.version} stored inactive; evaluation gate ${r.gate.status} (current: ${current}); follow it with: skt adapters report ${r.task} ${r.version}`
      : r.active
        ? infoLine(r)
        : `task ${r.task} v${r.version} stored inactive (current: ${current}); make it current with: skt adapters activate ${r.task} ${r.version}`;
  return [
    head,
    `sha256 ${r.sha256}`,
    ...(r.renamed_from ? [`renamed from ${r.renamed_from}`] : []),
    ...(r.signature_dropped ? ["signature dropped (the rename changed the signed metadata)"] : []),
  ].join("\n");
}

const score = (x: number | null | undefined) => (x === null || x === undefined ? "-" : x.toFixed(4));

function reportText(r: GateReport): string {
  const lines = [
    `task ${r.task} v${r.version}: gate ${r.status}${r.activated ? " (made current)" : ""}`,
    `progress ${r.progress.done}/${r.progress.total} rows; metric ${r.metric ?? "-"}; tolerance ${r.tolerance}`,
    `candidate v${r.version}: ${score(r.candidate?.score)}`,
    r.baseline
      ? `current   v${r.baseline.version}: ${score(r.baseline.score)}`
      : "current: none (nothing to compare with)",
  ];
  if (r.reason) lines.push(`reason: ${r.reason}`);
  return lines.join("\n");
}

/** The eval-set media type for a file, from its extension (the trainer's formats). */
function evalSetMediaType(file: string): EvalSetMediaType {
  const ext = file.toLowerCase().split(".").pop();
  if (ext === "tsv") return "text/tab-separated-values";
  if (ext === "csv") return "text/csv";
  if (ext === "jsonl") return "application/jsonl";
  return usage(`the evaluation set must be a .tsv, .csv or .jsonl file, got "${file}"`);
}

interface TrafficFlags {
  canaryVersion?: string;
  canaryPercent?: string;
  shadowVersion?: string;
  clear?: boolean;
}

/** The split the flags ask for, or null when they ask for none (show). The flags give the whole split. */
export function trafficSplitFrom(o: TrafficFlags): TrafficSplitBody | null {
  const setting = o.canaryVersion !== undefined || o.canaryPercent !== undefined || o.shadowVersion !== undefined;
  if (o.clear) {
    if (setting) usage("--clear removes the canary and the shadow: give it alone");
    return {};
  }
  if (!setting) return null;
  if ((o.canaryVersion === undefined) !== (o.canaryPercent === undefined))
    usage("--canary-version and --canary-percent go together");
  const split: TrafficSplitBody = {};
  if (o.canaryVersion !== undefined && o.canaryPercent !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(o.canaryPercent) || Number(o.canaryPercent) > 100)
      usage(`--canary-percent must be a number from 0 to 100, got "${o.canaryPercent}"`);
    split.canary = { version: positiveInteger(o.canaryVersion, "--canary-version"), percent: Number(o.canaryPercent) };
  }
  if (o.shadowVersion !== undefined) split.shadow = { version: positiveInteger(o.shadowVersion, "--shadow-version") };
  return split;
}

/** The split and its counts as a few lines and a table. */
export function trafficText(t: TrafficState): string {
  const lines = [
    `task ${t.task}: current v${t.current ?? "-"}, canary ${t.canary ? `v${t.canary.version} at ${t.canary.percent} %` : "none"}, shadow ${t.shadow ? `v${t.shadow.version}` : "none"}${t.since ? ` (since ${t.since})` : ""}`,
  ];
  if (t.versions.length)
    lines.push(
      renderTable(
        ["VERSION", "ROLE", "REQUESTS", "ROWS"],
        t.versions.map((v) => [v.version, v.role, v.requests, v.rows]),
      ),
    );
  const s = t.shadow_counts;
  if (s)
    lines.push(
      `shadow v${s.version}: ${s.agreed} of ${s.compared} rows agree with the current version` +
        `${s.agreement === null ? "" : ` (${(100 * s.agreement).toFixed(1)} %)`}${s.skipped ? `, ${s.skipped} skipped` : ""}`,
    );
  return lines.join("\n");
}

/** The texts to send: the arguments, or one per line from stdin when there are none and stdin is not a terminal. */
async function textsFrom(args: string[]): Promise<string[]> {
  if (args.length > 0) return args;
  if (process.stdin.isTTY) usage("give the texts as arguments (quote each one) or one per line on stdin");
  let input = "";
  for await (const chunk of process.stdin) input += String(chunk);
  const lines = input.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length === 0) usage("no texts on stdin");
  return lines;
}

export function addClientCommands(program: Command): void {
  const adapters = program
    .command("adapters")
    .summary("manage a running server's adapters (admin API)")
    .description(
      "Manage the adapters of a running server through its admin API. The token comes from SKT_ADMIN_TOKEN unless --token is given; it is never printed.",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  $ SKT_ADMIN_TOKEN=… skt adapters list --url http://10.0.0.5:8080\n  $ skt adapters upload build/sst2.safetensors && skt adapters show sst2",
    );
  const adminCommand = (name: string, summary: string) =>
    addFlags(
      adapters
        .command(name)
        .summary(summary)
        .description(`${summary[0].toUpperCase()}${summary.slice(1)}.`),
      [URL_FLAG, TOKEN_FLAG, JSON_FLAG],
    );

  adminCommand("list", "list every task and its current version")
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt adapters list\n  $ skt adapters list --json --url http://127.0.0.1:9000",
    )
    .action(async (o: ClientOpts) => {
      const r = await clientFor(o, true).listAdapters();
      print(o, r, () =>
        r.adapters.length
          ? renderTable(
              ["TASK", "VERSION"],
              r.adapters.map((a) => [a.task, a.version]),
            )
          : "no adapters",
      );
    });

  adminCommand("show", "show a task's versions and their metadata")
    .argument("<task>", "task name")
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt adapters show sst2\n  $ skt adapters show sst2 --json | jq '.versions[-1].metadata.training'",
    )
    .action(async (task: string, o: ClientOpts) => {
      const r = await clientFor(o, true).showAdapter(task);
      print(o, r, () =>
        renderTable(
          ["VERSION", "STATE", "GATE", "BYTES", "CREATED", "VARIANT", "LABELS", "PROMPT"],
          r.versions.map((v) => [
            v.version,
            v.current ? "current" : v.staged ? "inactive (waiting)" : "inactive",
            v.gate?.status ?? "-",
            v.bytes,
            v.created_at,
            v.metadata.variant,
            (v.metadata.labels as string[] | undefined)?.join(",") ?? "-",
            v.metadata.prompt_text,
          ]),
        ),
      );
    });

  adminCommand("upload", "upload an adapter file as its task's next version (current at once unless told otherwise)")
    .argument("<file>", "adapter .safetensors file")
    .option("--task <name>", "Task to upload to [default: the task named in the file's metadata]")
    .option("--no-activate", "Store and prepare the version without making it current (activate it later)")
    .option("--gate", "Store inactive; the server makes it current only if it passes the evaluation gate")
    .option("--tolerance <x>", "With --gate: how far below the current version's score it may be [default: 0]")
    .option("--rename", "Store a file whose metadata names another task under --task (its metadata is rewritten)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt adapters upload build/sst2.safetensors\n  $ skt adapters upload build/sst2.safetensors --no-activate\n  $ skt adapters upload build/sst2.safetensors --gate --tolerance 0.005\n  $ skt adapters upload build/sst2.safetensors --task sst2-canary --rename",
    )
    .action(
      async (
        file: string,
        o: ClientOpts & { task?: string; activate: boolean; gate?: boolean; tolerance?: string; rename?: boolean },
      ) => {
        if (o.gate && !o.activate) usage("--gate already stores the version inactive: drop --no-activate");
        if (o.tolerance !== undefined && !o.gate) usage("--tolerance goes with --gate");
        const tolerance = o.tolerance === undefined ? undefined : Number(o.tolerance);
        if (tolerance !== undefined && !(tolerance >= 0 && tolerance <= 1)) {
          usage(`--tolerance must be a number from 0 to 1, got "${o.tolerance}"`);
        }
        const bytes = new Uint8Array(await readFile(file));
        const task = o.task ?? peekMetadata(bytes).task;
        const r = await clientFor(o, true).uploadAdapter(task, bytes, {
          activate: o.activate,
          gate: o.gate ?? false,
          tolerance,
          rename: o.rename === true,
        });
        print(o, r, () => uploadLine(r));
      },
    );

  adminCommand("report", "show the evaluation-gate report of a version")
    .argument("<task>", "task name")
    .argument("<version>", "version number")
    .addHelpText("after", "\nExamples:\n  $ skt adapters report sst2 4\n  $ skt adapters report sst2 4 --json")
    .action(async (task: string, v: string, o: ClientOpts) => {
      const r = await clientFor(o, true).gateReport(task, positiveInteger(v, "<version>"));
      print(o, r, () => reportText(r));
    });

  adminCommand("eval-set", "store, show or remove a task's evaluation set (for --gate uploads)")
    .argument("<task>", "task name")
    .argument("[file]", "labelled .tsv, .csv or .jsonl file to store (omit to show the stored set)")
    .option("--delete", "Remove the task's evaluation set")
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt adapters eval-set sst2 ../shared/data/sst2/dev.tsv\n  $ skt adapters eval-set sst2\n  $ skt adapters eval-set sst2 --delete",
    )
    .action(async (task: string, file: string | undefined, o: ClientOpts & { delete?: boolean }) => {
      const client = clientFor(o, true);
      if (o.delete) {
        if (file !== undefined) usage("--delete takes no file");
        await client.deleteEvalSet(task);
        print(o, { deleted: `${task} eval-set` }, () => `evaluation set of ${task} deleted`);
        return;
      }
      const r =
        file === undefined
          ? await client.getEvalSet(task)
          : await client.putEvalSet(task, new Uint8Array(await readFile(file)), evalSetMediaType(file));
      print(
        o,
        r,
        () =>
          `evaluation set of ${task}: ${r.rows} rows (${r.format}, labels ${r.labels.join(", ") || "-"} by ${r.label_mapping}), sha256 ${r.sha256.slice(0, 12)}…, stored ${r.created_at}`,
      );
    });

  adminCommand("rollback", "make an earlier version current again (default: the one before)")
    .argument("<task>", "task name")
    .option("--version <n>", "Version to restore [default: the one before the current]")
    .addHelpText("after", "\nExamples:\n  $ skt adapters rollback sst2\n  $ skt adapters rollback sst2 --version 3")
    .action(async (task: string, o: ClientOpts & { version?: string }) => {
      const r = await clientFor(o, true).rollback(
        task,
        o.version === undefined ? undefined : positiveInteger(o.version, "--version"),
      );
      print(o, r, () => infoLine(r));
    });

  adminCommand("activate", "make a stored version of a task current")
    .argument("<task>", "task name")
    .argument("<version>", "version number")
    .addHelpText("after", "\nExamples:\n  $ skt adapters activate sst2 4\n  $ skt adapters activate sst2 2 --json")
    .action(async (task: string, v: string, o: ClientOpts) => {
      const r = await clientFor(o, true).activate(task, positiveInteger(v, "<version>"));
      print(o, r, () => infoLine(r));
    });

  adminCommand("traffic", "show or set a task's canary and shadow versions")
    .argument("<task>", "task name")
    .option("--canary-version <n>", "Stored version that answers a share of the rows (with --canary-percent)")
    .option("--canary-percent <p>", "Share of the task's rows for the canary, 0-100")
    .option("--shadow-version <n>", "Stored version that also scores every row the current one answers (not returned)")
    .option("--clear", "Remove the canary and the shadow")
    .addHelpText(
      "after",
      "\nThe flags give the whole new split: a canary or shadow left out is removed. Without flags: show the split and what each version answered.\n" +
        "\nExamples:\n  $ skt adapters traffic sst2\n  $ skt adapters traffic sst2 --canary-version 4 --canary-percent 10 --shadow-version 5\n  $ skt adapters traffic sst2 --clear",
    )
    .action(async (task: string, o: ClientOpts & TrafficFlags) => {
      const split = trafficSplitFrom(o);
      const client = clientFor(o, true);
      const r = split === null ? await client.traffic(task) : await client.setTraffic(task, split);
      print(o, r, () => trafficText(r));
    });

  adminCommand("delete", "stop serving a task and remove its adapters (or remove one inactive version)")
    .argument("<task>", "task name")
    .option("--version <n>", "Remove only this stored version (not the current one)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt adapters delete sst2-canary\n  $ skt adapters delete sst2 --version 5\n  $ skt adapters delete old-task --url http://10.0.0.5:8080",
    )
    .action(async (task: string, o: ClientOpts & { version?: string }) => {
      if (o.version !== undefined) {
        const version = positiveInteger(o.version, "--version");
        await clientFor(o, true).deleteVersion(task, version);
        print(o, { deleted: task, version }, () => `task ${task} v${version} deleted`);
        return;
      }
      await clientFor(o, true).deleteTask(task);
      print(o, { deleted: task }, () => `task ${task} deleted`);
    });

  adminCommand("audit", "show the admin audit log (newest entries, oldest first)")
    .option("--task <name>", "Only entries about this task")
    .option("--since <iso>", "Only entries at or after this ISO date-time, e.g. 2026-01-31T12:00:00Z")
    .option("--limit <n>", "At most this many of the newest entries [default: the server's, 100]")
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt adapters audit\n  $ skt adapters audit --task sst2 --since 2026-01-31T00:00:00Z --json",
    )
    .action(async (o: ClientOpts & { task?: string; since?: string; limit?: string }) => {
      const limit = o.limit === undefined ? undefined : positiveInteger(o.limit, "--limit", "a whole number ≥ 1");
      const r = await clientFor(o, true).audit({ task: o.task, since: o.since, limit });
      print(o, r, () => {
        if (r.entries.length === 0) return "no audit entries";
        const table = renderTable(
          ["TIME", "ACTOR", "ACTION", "TASK", "VERSION", "STATUS", "RESULT", "CODE", "CLIENT"],
          r.entries.map((e) => [e.time, e.actor, e.action, e.task, e.version, e.status, e.result, e.code, e.client]), // null shows as "-"
        );
        return r.truncated
          ? `${table}\n(older matching entries left out: narrow with --since or raise --limit)`
          : table;
      });
    });

  addFlags(program.command("classify").summary("classify texts with a task's current adapter"), [
    { flag: "--task", value: "name", meaning: "Task (adapter) to use (required)." },
    { flag: "--pair", value: "text", meaning: "Second segment, for pair tasks (with one text)." },
    URL_FLAG,
    JSON_FLAG,
  ])
    .description(
      "Classify texts through a running server's /classify. Texts are the arguments, or one per line on stdin.",
    )
    .argument("[texts...]", "texts to classify")
    .addHelpText(
      "after",
      '\nExamples:\n  $ skt classify --task sst2 "a gorgeous, witty film" "one long string of cliches"\n  $ cut -f1 reviews.tsv | skt classify --task sst2 --json',
    )
    .action(async (args: string[], o: ClientOpts & { task?: string; pair?: string }) => {
      if (!o.task) usage("classify needs --task NAME");
      const texts = await textsFrom(args);
      if (o.pair !== undefined && texts.length !== 1) usage("--pair goes with exactly one text");
      const r = await clientFor(o, false).classify(o.task, texts, o.pair === undefined ? undefined : [o.pair]);
      print(o, r, () =>
        [
          `task ${r.task} v${r.adapter_version}`,
          renderTable(
            ["TEXT", "LABEL", "SCORE", "TOKENS"],
            r.predictions.map((p, i) => [
              texts[i],
              p.label ?? (p.value !== undefined ? `value ${p.value.toFixed(4)}` : "-"),
              p.score?.toFixed(4) ?? "-",
              `${p.tokens}${p.truncated ? " (cut)" : ""}`,
            ]),
          ),
        ].join("\n"),
      );
    });

  addFlags(program.command("embed").summary("sentence embeddings from the server's backbone"), [URL_FLAG, JSON_FLAG])
    .description(
      "Embed texts with the server's backbone (POST /embed). Texts are the arguments, or one per line on stdin; --json prints the vectors.",
    )
    .argument("[texts...]", "texts to embed")
    .addHelpText(
      "after",
      '\nExamples:\n  $ skt embed "first sentence" "second sentence"\n  $ skt embed --json < sentences.txt > vectors.json',
    )
    .action(async (args: string[], o: ClientOpts) => {
      const texts = await textsFrom(args);
      const r = await clientFor(o, false).embed(texts);
      print(o, r, () =>
        [
          `model ${r.model}`,
          renderTable(
            ["TEXT", "TOKENS", "DIMS", "NORM", "FIRST VALUES"],
            r.embeddings.map((e, i) => [
              texts[i],
              r.tokens[i],
              e.length,
              Math.hypot(...e).toFixed(4),
              e
                .slice(0, 4)
                .map((x) => x.toFixed(4))
                .join(" "),
            ]),
          ),
        ].join("\n"),
      );
    });
}
