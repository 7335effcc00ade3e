/**
 * The operator client: `skt adapters list|show|upload|rollback|activate|traffic|delete|audit`, `skt classify`
 * and `skt embed`, against a running server. Readable tables by default, the server's JSON with `--json`.
 * The admin token comes from SKT_ADMIN_TOKEN (or --token) and is never printed.
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { peekMetadata } from "../adapters/format.js";
import { SktError } from "../errors.js";
import { SktClient, type TaskInfoJson, type TrafficJson, type TrafficSplitJson } from "./client.js";
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

function infoLine(i: TaskInfoJson): string {
  return `task ${i.task} v${i.version} is current (${i.variant}, ${i.problem_type}, labels ${i.labels.join(", ") || "-"}, ${i.parameters.toLocaleString("en-US")} parameters)`;
}

interface TrafficFlags {
  canaryVersion?: string;
  canaryPercent?: string;
  shadowVersion?: string;
  clear?: boolean;
}

/** The split the flags ask for, or null when they ask for none (show). The flags give the whole split. */
export function trafficSplitFrom(o: TrafficFlags): TrafficSplitJson | null {
  const setting = o.canaryVersion !== undefined || o.canaryPercent !== undefined || o.shadowVersion !== undefined;
  if (o.clear) {
    if (setting) usage("--clear removes the canary and the shadow: give it alone");
    return {};
  }
  if (!setting) return null;
  if ((o.canaryVersion === undefined) !== (o.canaryPercent === undefined))
    usage("--canary-version and --canary-percent go together");
  const split: TrafficSplitJson = {};
  if (o.canaryVersion !== undefined && o.canaryPercent !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(o.canaryPercent) || Number(o.canaryPercent) > 100)
      usage(`--canary-percent must be a number from 0 to 100, got "${o.canaryPercent}"`);
    split.canary = { version: positiveInteger(o.canaryVersion, "--canary-version"), percent: Number(o.canaryPercent) };
  }
  if (o.shadowVersion !== undefined) split.shadow = { version: positiveInteger(o.shadowVersion, "--shadow-version") };
  return split;
}

/** The split and its counts as a few lines and a table. */
export function trafficText(t: TrafficJson): string {
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
          ["VERSION", "CURRENT", "BYTES", "CREATED", "VARIANT", "LABELS", "PROMPT"],
          r.versions.map((v) => [
            v.version,
            v.current ? "*" : "",
            v.bytes,
            v.created_at,
            v.metadata.variant,
            (v.metadata.labels as string[] | undefined)?.join(",") ?? "-",
            v.metadata.prompt_text,
          ]),
        ),
      );
    });

  adminCommand("upload", "upload an adapter file as its task's next current version")
    .argument("<file>", "adapter .safetensors file")
    .option("--task <name>", "Task to upload to [default: the task named in the file's metadata]")
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt adapters upload build/sst2.safetensors\n  $ skt adapters upload build/sst2.safetensors --task sst2-canary",
    )
    .action(async (file: string, o: ClientOpts & { task?: string }) => {
      const bytes = new Uint8Array(await readFile(file));
      const task = o.task ?? peekMetadata(bytes).task;
      const r = await clientFor(o, true).uploadAdapter(task, bytes);
      print(o, r, () => infoLine(r));
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

  adminCommand("delete", "stop serving a task and remove its adapters")
    .argument("<task>", "task name")
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt adapters delete sst2-canary\n  $ skt adapters delete old-task --url http://10.0.0.5:8080",
    )
    .action(async (task: string, o: ClientOpts) => {
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
