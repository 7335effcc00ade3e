#!/usr/bin/env bash
# Makes PostgreSQL's server binaries (initdb, pg_ctl, postgres) available for the shared-store tests
# (test/adapters/postgres-store.test.ts, test/e2e/replicas.test.ts) and `npm run bench:replicas`.
# Installs Debian's `postgresql` package with apt when initdb is found neither on PATH nor under
# /usr/lib/postgresql/<version>/bin. The tests start their own throwaway cluster in a temporary
# folder on a loopback port (scripts/lib/postgres-cluster.ts); as root they run initdb/pg_ctl as the
# `postgres` user that the package creates (else `nobody`) through runuser, since initdb refuses root.
# Nothing is started here, and the package's default cluster is not used.
set -euo pipefail

have_initdb() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_initdb; then
  echo "install-postgres: initdb found; nothing to install"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-postgres: initdb not found and not root; run as root or install Debian's postgresql package" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  have_initdb || { echo "install-postgres: postgresql installed but initdb is still missing" >&2; exit 1; }
  echo "install-postgres: installed $(ls /usr/lib/postgresql)"
fi

if [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1 && ! id -u nobody >/dev/null 2>&1; then
  echo "install-postgres: running as root but there is no postgres or nobody user to run PostgreSQL as" >&2
  exit 1
fi
command -v runuser >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ] || { echo "install-postgres: runuser (util-linux) is missing" >&2; exit 1; }
