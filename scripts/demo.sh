#!/usr/bin/env bash
# Command 1 of the README: install what is missing, then run the inbound pipeline on the
# embedded local stack (Temporal dev server + Web UI, S3, DynamoDB, SMTP) with demo mail.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what the demo uses; the binaries only the tests need build in the background.
bash scripts/setup.sh --demo
# The Node setup chose: node_modules/.bin/node where it installed Node 24 (Node 22+ needed).
export PATH="$PWD/node_modules/.bin:$PATH"
LOG_LEVEL="${DEMO_LOG_LEVEL:-warn}" exec node --import tsx scripts/demo.ts "$@"
