// The operator endpoints of the existing worker, kept compatible:
//   GET /health  (HEALTH_PORT, 8080): {"status":"healthy"|"unhealthy", "checks": {...}}
//   GET /domains (HEALTH_PORT): ["example.com", ...]
//   GET /metrics (METRICS_PORT, 8000): Prometheus text, mailroom's metrics followed by
//                the Temporal worker's own (scraped from the SDK's exporter).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../lib/config';
import { registry } from '../lib/observability/metrics';

export type HealthCheck = () => Promise<void>;

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  worker: string;
  checks: Record<string, { ok: boolean; error?: string; ms: number }>;
}

export async function runChecks(
  checks: Record<string, HealthCheck>,
  timeoutMs = 5000,
): Promise<HealthReport['checks']> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      const t0 = Date.now();
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref(),
          ),
        ]);
        return [name, { ok: true, ms: Date.now() - t0 }] as const;
      } catch (err) {
        return [name, { ok: false, error: (err as Error).message, ms: Date.now() - t0 }] as const;
      }
    }),
  );
  return Object.fromEntries(entries);
}

/**
 * Listens, or fails with a ConfigError naming the variable that chose the port: "EADDRINUSE
 * 0.0.0.0:8080" alone does not tell an operator what to change.
 */
export function listen(server: Server, port: number, host: string, variable: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        reject(
          new ConfigError(
            `${variable}: port ${port} on ${host} is already in use (another worker on this machine?); set ${variable} to a free port, or to 0 to pick one (logged at start)`,
          ),
        );
      else if (err.code === 'EACCES')
        reject(
          new ConfigError(
            `${variable}: not allowed to listen on port ${port} on ${host} (ports below 1024 need privileges); set ${variable} to another port`,
          ),
        );
      else reject(err);
    });
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

export async function startHealthServer(opts: {
  port: number;
  host?: string;
  /** named when the port is taken */ portVariable?: string;
  worker: string;
  domains: () => string[];
  checks: Record<string, HealthCheck>;
}): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/health') {
      runChecks(opts.checks)
        .then((checks) => {
          const healthy = Object.values(checks).every((c) => c.ok);
          const body: HealthReport = { status: healthy ? 'healthy' : 'unhealthy', worker: opts.worker, checks };
          res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        })
        .catch((err: Error) => res.writeHead(500).end(err.message));
    } else if (url === '/domains') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(opts.domains()));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /health or /domains\n');
    }
  });
  return { server, port: await listen(server, opts.port, opts.host ?? '0.0.0.0', opts.portVariable ?? 'HEALTH_PORT') };
}

export async function startMetricsServer(opts: {
  port: number;
  host?: string;
  /** named when the port is taken */ portVariable?: string;
  temporalMetricsUrl?: string;
  /** Brings cached values up to date before a scrape (it decides how often it really asks). */
  beforeScrape?: () => Promise<void>;
}): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if ((req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: try /metrics\n');
      return;
    }
    const ours = (opts.beforeScrape?.() ?? Promise.resolve()).then(() => registry.metrics());
    const theirs = opts.temporalMetricsUrl
      ? fetch(opts.temporalMetricsUrl).then(
          (r) => (r.ok ? r.text() : ''),
          () => '',
        )
      : Promise.resolve('');
    Promise.all([ours, theirs])
      .then(([a, b]) => res.writeHead(200, { 'content-type': registry.contentType }).end(`${a}\n${b}`))
      .catch((err: Error) => res.writeHead(500).end(err.message));
  });
  return { server, port: await listen(server, opts.port, opts.host ?? '0.0.0.0', opts.portVariable ?? 'METRICS_PORT') };
}

/**
 * The address for the Temporal SDK's Prometheus exporter (TEMPORAL_METRICS_BIND), checked
 * before the SDK binds it (its own error would not name the variable). It is only scraped by
 * our /metrics, so unset or port 0 means a free loopback port: a second worker on the same
 * machine needs no setting for it.
 */
export async function temporalMetricsBind(
  value: string | undefined,
  variable = 'TEMPORAL_METRICS_BIND',
): Promise<string> {
  const m = /^(.+):(\d+)$/.exec(value?.trim() || '127.0.0.1:0');
  if (!m || Number(m[2]) > 65535)
    throw new ConfigError(
      `${variable}: "${value}" is not host:port (e.g. 127.0.0.1:9464, or 127.0.0.1:0 for any free port)`,
    );
  const host = m[1].replace(/^\[(.*)\]$/, '$1');
  const probe = createServer();
  const port = await listen(probe, Number(m[2]), host, variable);
  await new Promise((r) => probe.close(r));
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
