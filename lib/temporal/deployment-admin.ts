// The operator's side of Worker Versioning: read and change which build of the worker
// deployment gets new workflows. Used by starters/deployment-*.ts (one command per action)
// and by the versioning test. Pinned workflows are never moved by any of these: a version
// that stops being current or ramping drains, its workers finish what they started.
import { userInfo, hostname } from 'node:os';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { UsageError } from '../cli';
import { deploymentName } from './versioning';

const { WorkerDeploymentVersionStatus, VersionDrainageStatus } = temporal.api.enums.v1;

export interface VersionState {
  buildId: string;
  /** inactive, current, ramping, draining, drained, created */
  status: string;
  /** draining (pinned workflows still open) or drained; empty while current/ramping */
  drainage: string;
  createdAt?: string;
}

export interface DeploymentState {
  deploymentName: string;
  /** null: new workflows go to unversioned workers */
  current: string | null;
  ramping: { buildId: string; percent: number } | null;
  versions: VersionState[];
  lastModifiedBy?: string;
}

const short = (name: string | undefined, prefix: string) => (name ?? '').replace(prefix, '').toLowerCase();

function time(t: { seconds?: unknown } | null | undefined): string | undefined {
  return t?.seconds ? new Date(Number(t.seconds) * 1000).toISOString() : undefined;
}

function identity(action: string): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry in some containers */
  }
  return `mailroom ${action} (${user}@${hostname()})`;
}

export class DeploymentAdmin {
  constructor(
    private readonly client: Client,
    readonly deploymentName: string,
  ) {}

  private get namespace(): string {
    return this.client.options.namespace ?? 'default';
  }

  private async describeRaw() {
    try {
      return await this.client.workflowService.describeWorkerDeployment({
        namespace: this.namespace,
        deploymentName: this.deploymentName,
      });
    } catch (err) {
      if ((err as { code?: number }).code === 5) {
        throw new Error(
          `worker deployment "${this.deploymentName}" not found in namespace ${this.namespace}: start a worker with TEMPORAL_BUILD_ID set (and TEMPORAL_DEPLOYMENT_NAME=${this.deploymentName}) first`,
        );
      }
      throw err;
    }
  }

  async status(): Promise<DeploymentState> {
    const { workerDeploymentInfo: info } = await this.describeRaw();
    const routing = info?.routingConfig;
    const rampingBuild = routing?.rampingDeploymentVersion?.buildId;
    return {
      deploymentName: this.deploymentName,
      current: routing?.currentDeploymentVersion?.buildId || null,
      ramping: rampingBuild ? { buildId: rampingBuild, percent: routing?.rampingVersionPercentage ?? 0 } : null,
      versions: (info?.versionSummaries ?? [])
        .map((v) => ({
          buildId: v.deploymentVersion?.buildId ?? v.version ?? '?',
          status: short(WorkerDeploymentVersionStatus[v.status ?? 0], 'WORKER_DEPLOYMENT_VERSION_STATUS_'),
          drainage: short(
            VersionDrainageStatus[v.drainageInfo?.status ?? v.drainageStatus ?? 0],
            'VERSION_DRAINAGE_STATUS_',
          ).replace('unspecified', ''),
          createdAt: time(v.createTime),
        }))
        .sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? '')),
      lastModifiedBy: info?.lastModifierIdentity || undefined,
    };
  }

  /** Sends `percent` % of new workflows to `buildId` (0 keeps it ramping at 0 %). */
  async ramp(buildId: string, percent: number): Promise<void> {
    if (!buildId) throw new Error('a build id is required');
    if (!Number.isFinite(percent) || percent < 0 || percent > 100)
      throw new Error(`percent must be within 0..100 (got ${percent})`);
    const { conflictToken } = await this.describeRaw();
    await this.client.workflowService
      .setWorkerDeploymentRampingVersion({
        namespace: this.namespace,
        deploymentName: this.deploymentName,
        buildId,
        percentage: percent,
        conflictToken,
        identity: identity('deploy:ramp'),
      })
      .catch((err: unknown) => this.explain(err, buildId));
  }

  /** Makes `buildId` current (all new workflows) and ends any ramp. Empty: unversioned workers. */
  async promote(buildId: string, action = 'deploy:promote'): Promise<void> {
    const { conflictToken } = await this.describeRaw();
    const res = await this.client.workflowService
      .setWorkerDeploymentCurrentVersion({
        namespace: this.namespace,
        deploymentName: this.deploymentName,
        buildId,
        conflictToken,
        identity: identity(action),
      })
      .catch((err: unknown) => this.explain(err, buildId));
    // Promoting the ramping version ends its ramp on the server; any other ramp is ended here.
    if ((await this.status()).ramping) await this.unramp(action, res.conflictToken);
  }

  /** Stops the ramp: new workflows all go to the current version again. */
  async unramp(action = 'deploy:rollback', conflictToken?: Uint8Array | null): Promise<void> {
    // An empty build id with 0 % clears the ramping version.
    await this.client.workflowService.setWorkerDeploymentRampingVersion({
      namespace: this.namespace,
      deploymentName: this.deploymentName,
      buildId: '',
      percentage: 0,
      conflictToken: conflictToken ?? (await this.describeRaw()).conflictToken,
      identity: identity(action),
    });
  }

  private explain(err: unknown, buildId: string): never {
    if ((err as { code?: number }).code === 5) {
      throw new Error(
        `build ${buildId} is not a version of deployment ${this.deploymentName}: start its workers (TEMPORAL_BUILD_ID=${buildId}) and wait until deploy:status lists it`,
      );
    }
    throw err;
  }

  /** Waits until workers of `buildId` have polled (the server knows the version). */
  async waitForVersion(buildId: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if ((await this.status()).versions.some((v) => v.buildId === buildId)) return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      if (Date.now() > deadline)
        throw new Error(
          `no worker of build ${buildId} polled deployment ${this.deploymentName} within ${timeoutMs / 1000} s`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** The --deployment option of the deploy:* commands. */
export const DEPLOYMENT_OPTION = {
  type: 'string',
  value: '<name>',
  description: 'the Worker Deployment (default: TEMPORAL_DEPLOYMENT_NAME, else mailroom)',
} as const;

/** The deployment a deploy:* command acts on: --deployment, else TEMPORAL_DEPLOYMENT_NAME (validated either way). */
export function deploymentOption(value: string | undefined): string {
  if (value === undefined) return deploymentName();
  if (value.includes('.'))
    throw new UsageError(
      `--deployment ${value} must not contain "." (the server writes versions as <deployment>.<build>)`,
    );
  return value.trim();
}

export function formatStatus(s: DeploymentState): string {
  const lines = [
    `deployment ${s.deploymentName}`,
    `  current: ${s.current ?? '(unversioned workers)'}`,
    `  ramping: ${s.ramping ? `${s.ramping.buildId} at ${s.ramping.percent}%` : '(none)'}`,
    '  versions:',
    ...(s.versions.length
      ? s.versions.map(
          (v) =>
            `    ${v.buildId.padEnd(24)} ${v.status.padEnd(9)} ${v.drainage && v.drainage !== v.status ? `(${v.drainage}) ` : ''}created ${v.createdAt ?? '?'}`,
        )
      : ['    (none)']),
  ];
  if (s.lastModifiedBy) lines.push(`  last change by ${s.lastModifiedBy}`);
  return lines.join('\n');
}
