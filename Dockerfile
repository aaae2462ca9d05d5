# mailroom worker image: the app compiled ahead of time and its workflow bundles built in the
# build stage (npm run build), production dependencies only, run by `node` as a non-root user.
# The same image runs the inbound worker (default), the SQS bridge, the sync worker, the
# codec server and the operator scripts: `node dist/workers/<name>.js`, `node dist/starters/...`.
# test/integration/production-build.test.ts runs these stages' commands without Docker.

# Node 24 on Debian 13, the line tools/node-runtime installs for the local stack; the
# major-version tag takes Node's and Debian's security releases at each build.

# --- build: all dependencies, compile, bundle ------------------------------------------
FROM node:24-trixie-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Exactly the lockfile (package.json allowScripts lists the install scripts it may run).
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.sh scripts/build-workflow-bundles.ts scripts/setup-db.ts scripts/migrate.ts scripts/setup-aws.ts scripts/
COPY scripts/stack/dynamodb.ts scripts/stack/s3.ts scripts/stack/ports.ts scripts/stack/
COPY contracts contracts
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY starters starters
COPY lib lib
COPY migrations migrations
RUN bash scripts/build.sh dist

# --- production dependencies, in a directory of their own ------------------------------
FROM node:24-trixie-slim AS deps
WORKDIR /prod
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
  # The Temporal core bridge ships a prebuilt library per platform (about 30 MB each): keep this one's.
  && case "$(uname -m)" in x86_64) keep=x86_64-unknown-linux-gnu ;; aarch64) keep=aarch64-unknown-linux-gnu ;; *) keep=none ;; esac \
  && if [ -d "node_modules/@temporalio/core-bridge/releases/$keep" ]; then \
       find node_modules/@temporalio/core-bridge/releases -mindepth 1 -maxdepth 1 ! -name "$keep" -exec rm -rf {} +; \
     fi

# --- runtime ----------------------------------------------------------------------------
FROM node:24-trixie-slim
ENV NODE_ENV=production \
    METRICS_PORT=8000 \
    HEALTH_PORT=8080
WORKDIR /app
COPY --from=deps /prod/package.json ./
COPY --from=deps /prod/node_modules node_modules
COPY --from=build /src/dist dist
COPY domains.txt ./
# The base image's unprivileged user; the app's files stay root's, read-only to it.
USER node
EXPOSE 8000 8080

# Node's own fetch: no curl in the image. The worker's /health checks Temporal, S3,
# DynamoDB and the mail server; other services set their own check (docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || 8080) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node itself as PID 1's child (compose sets init: true): SIGTERM reaches the worker, which
# finishes in-flight activities before it exits.
# V8's old generation otherwise grows to about three times what is live between collections, and
# each isolate (the main thread, the workflow thread) keeps 16 MB semi-spaces: with 1,000 emails
# queued the worker's RSS reached 600 MiB. A growth of 1.5 and 4 MB semi-spaces keep it under
# 300 MiB at the same CPU per email (docs/benchmarks.md). Only allowed on the command line, not in
# NODE_OPTIONS; the bench and the production-build test read them from here.
CMD ["node", "--enable-source-maps", "--heap-growing-percent=50", "--max-semi-space-size=4", "dist/workers/main.js"]
