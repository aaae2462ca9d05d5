#!/usr/bin/env bash
# npm run build [-- OUT_DIR]: the compiled app (tsc -p tsconfig.build.json, default dist/),
# the SQL migrations it applies, and the workflow bundles beside it (OUT_DIR/workflow-bundles).
# What the Dockerfile's build stage runs; the compiled workers start with
# `node dist/workers/main.js` and need no TypeScript tooling. Bundling resolves the SDK
# from the node_modules above OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
rm -rf "$out"
npx tsc -p tsconfig.build.json --outDir "$out"
cp -r migrations "$out/migrations"
node "$out/scripts/build-workflow-bundles.js"
