# mailroom worker image. Runs the TypeScript sources directly through tsx (no build step),
# so dev dependencies are installed too.
FROM node:22-bookworm-slim

# curl for the HEALTHCHECK; ca-certificates for TLS to SES/SMTP relays.
RUN apt-get update \
  && apt-get install -y --no-install-recommends curl ca-certificates \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN chown node:node /app
USER node

# Dependencies first, so source edits do not invalidate the npm layer.
COPY --chown=node:node package.json package-lock.json ./
# Not --omit=dev: tsx (a dev dependency) is what runs the worker.
# npm ci can refuse npm 11 lockfiles (other platforms' optional @swc/core-* missing); npm install keeps the locked versions.
RUN (npm ci --no-audit --no-fund || npm install --no-audit --no-fund) && npm cache clean --force

COPY --chown=node:node . .

ENV NODE_ENV=production \
    METRICS_PORT=8000 \
    HEALTH_PORT=8080
EXPOSE 8000 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD curl -fsS http://localhost:8080/health || exit 1

# node itself, not `npx tsx`: npx exits on SIGTERM without passing it on, and the worker
# needs that signal to drain in-flight activities before the container stops.
CMD ["node", "--import", "tsx", "workers/main.ts"]
