#!/usr/bin/env bash
# Installs what a fresh machine lacks for mailroom: npm packages (from the lockfile),
# the temporal CLI, the Temporal server for PostgreSQL and goaws (via Go), Dovecot (IMAP +
# LMTP, for the sync and LMTP tests), and creates mailroom's PostgreSQL database. Safe to
# run again; skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  # npm 11 writes lockfiles without the other platforms' optional packages (@swc/core-*)
  # and then `npm ci` refuses them as out of sync; `npm install` still installs exactly
  # the locked versions, so it is the fallback.
  npm ci --no-audit --no-fund || { echo "npm ci refused the lockfile; installing the locked versions with npm install"; npm install --no-audit --no-fund; }
fi

echo "== temporal CLI"
temporal_path=$(bash scripts/install-temporal.sh | tail -n 1)
echo "   $temporal_path"

echo "== Temporal server, SQL tool and Web UI server (npm run temporal:postgres)"
bash scripts/install-temporal-server.sh | sed 's/^/   /'

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
