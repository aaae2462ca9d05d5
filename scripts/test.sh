#!/usr/bin/env bash
# Command 2 of the README (`npm test`): install what is missing, then typecheck, lint,
# and run every test (unit, then integration against real local servers). Exits
# non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Node setup chose (node_modules/.bin/node where it installed Node 24) runs everything
# below, the test files and the processes they start (process.execPath).
export PATH="$PWD/node_modules/.bin:$PATH"
node -e 'const v = process.versions.node; if (+v.split(".")[0] < 22) { console.error(`Node ${v} on PATH; mailroom needs 22 or newer (npm run setup installs it)`); process.exit(1); }'
echo "== node $(node --version)"
export LOG_LEVEL="${LOG_LEVEL:-warn}"

echo "== typecheck"
npx tsc -p tsconfig.json --noEmit
echo "== lint (eslint, then Prettier's check: npm run format fixes the layout)"
npm run -s lint
echo "== tests"
# One runner invocation, one file at a time: the integration tests start real servers
# and the machine has two cores. test/workflow/ runs the workflows on the dev server with
# stubbed activities (seconds), between the unit and the integration tests.
# A test that hangs fails after 30 minutes (tests that need longer say so themselves), and a
# file whose tests have all finished exits even if something it started still holds the event
# loop: once, in CI, a file hung after its last test passed until the 90-minute limit.
node --import tsx --test --test-concurrency=1 --test-timeout=1800000 --test-force-exit --test-reporter=spec \
  test/unit/*.test.ts test/workflow/*.test.ts test/integration/*.test.ts
