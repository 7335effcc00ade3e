#!/usr/bin/env bash
# What the CPU image does, without Docker: install production dependencies only
# (`npm ci --omit=dev --omit=optional`) in a scratch folder, check their size against the 400 MB
# target (issue 15), compile src/ with tsconfig.build.json, start `node dist/src/cli.js serve` there
# (it builds its own backbone from the production install) and check /readyz, a classification and a
# clean exit on SIGTERM. Needs the npm registry. Usage: bash scripts/ci/check-production-install.sh [limit-MB]
set -euo pipefail
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
limit_mb="${1:-400}"
work="$(mktemp -d "${TMPDIR:-/tmp}/skt-prod-XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

cp "$root/package.json" "$root/package-lock.json" "$root/.npmrc" "$work/"
if ! (cd "$work" && npm ci --omit=dev --omit=optional --no-audit --no-fund >npm.log 2>&1); then
  cat "$work/npm.log" >&2
  exit 1
fi
if grep -q EBADENGINE "$work/npm.log"; then
  echo "check-production-install: npm printed EBADENGINE warnings:" >&2
  grep EBADENGINE "$work/npm.log" >&2
  exit 1
fi
size_mb="$(du -sm "$work/node_modules" | cut -f1)"
echo "check-production-install: production node_modules ${size_mb} MB (target <= ${limit_mb} MB)"
if [ "$size_mb" -gt "$limit_mb" ]; then
  echo "check-production-install: over the target" >&2
  exit 1
fi
for dev in typescript vitest webgpu; do
  if [ -e "$work/node_modules/$dev" ]; then echo "check-production-install: $dev was installed" >&2; exit 1; fi
done

node "$root/node_modules/typescript/bin/tsc" -p "$root/tsconfig.build.json" --outDir "$work/dist"
cp -r "$root/adapters" "$work/adapters"
(cd "$work" && exec env -i PATH="$PATH" HOME="$work" PORT=0 HOST=127.0.0.1 NODE_ENV=production \
  SKT_MODELS_DIR="$work/models" SKT_ADAPTERS_DIR="$work/adapters" SKT_THREADS=1 \
  node dist/src/cli.js serve >"$work/serve.log" 2>&1) &
pid=$!

# The port (PORT=0) from the "listening" line, then /readyz (the backbone is built first) and a classification.
if ! node --input-type=module - "$work/serve.log" <<'JS'; then
import { readFileSync } from "node:fs";
const log = process.argv[2];
const deadline = Date.now() + 300_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let port;
while (!port) {
  if (Date.now() > deadline) throw new Error("no listening line");
  port = /"port":(\d+).*"msg":"listening"/.exec(readFileSync(log, "utf8"))?.[1];
  if (!port) await sleep(200);
}
for (;;) {
  if (Date.now() > deadline) throw new Error("not ready");
  const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
  if (r?.status === 200) break;
  await sleep(500);
}
const res = await fetch(`http://127.0.0.1:${port}/classify?task=sst2`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ texts: ["a gripping , funny film"] }),
});
const body = await res.json();
if (res.status !== 200 || body.predictions?.length !== 1) throw new Error(`classify: ${res.status} ${JSON.stringify(body)}`);
console.log(`check-production-install: compiled server answered: ${body.predictions[0].label} (adapter v${body.adapter_version})`);
JS
  cat "$work/serve.log" >&2
  exit 1
fi
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
if [ "$code" -ne 0 ]; then
  echo "check-production-install: the server exited $code after SIGTERM" >&2
  cat "$work/serve.log" >&2
  exit 1
fi
echo "check-production-install: ok"
