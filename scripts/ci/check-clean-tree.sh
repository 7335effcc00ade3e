#!/usr/bin/env bash
# Fails when the working tree has changes or untracked files (e.g. a test that wrote into the
# repository). Run it at the end of CI, after the tests: `bash scripts/ci/check-clean-tree.sh`.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
dirty="$(git status --porcelain --untracked-files=all)"
if [ -n "$dirty" ]; then
  echo "check-clean-tree: the tree is not clean after the run; these paths changed or appeared:" >&2
  printf '%s\n' "$dirty" >&2
  exit 1
fi
echo "check-clean-tree: clean"
