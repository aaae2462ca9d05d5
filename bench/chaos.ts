// `npm run chaos`: runs the inbound pipeline (and an account sync) on the local stack,
// breaks one thing per scenario mid-run, lets it recover and checks every email and
// message against ground truth. One line per scenario: emails in, delivered, duplicates,
// lost, time to recover. Results go to bench/results/chaos-<time>.json, with a chart
// beside it (.svg: workflows closed over time per scenario, the fault shaded).
//   --scenario a,b   only these (names below; default all)
//   --emails N       emails per inbound scenario (default 200)
//   --scale F        multiply outages and waits (default 1: the 60 s / 2 min of the issue)
//   --rate R         workflow starts per second (default 20)
//   --sync-messages N  messages in the mailbox of the sync scenario (default 1500)
//   --watch-accounts N accounts idling under IMAP IDLE watchers in the watch-* scenarios (default 20)
//   --send-messages N  messages sent in each send-sigkill scenario (default 40)
//   --send-kills N     SIGKILLs of the send worker per send-sigkill scenario (default 6)
// Exits 1 when anything was lost, left open or untagged, or reached a forbidden address.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { chaosChart, renderSvg } from './chart';
import type { InboundOutcome } from './chaos/inbound-run';
import { INBOUND_SCENARIOS, runInboundScenario, type ChaosSettings } from './chaos/scenarios';
import { interrupted, onInterrupt } from './chaos/interrupt';
import { startChaosStack } from './chaos/stack';
import { runSyncScenario } from './chaos/sync-run';
import { runWatchScenarios, WATCH_SCENARIOS, type WatchScenarioName } from './chaos/watch-run';
import { runSendScenarios, SEND_SCENARIOS, type SendChaosRow, type SendScenarioName } from './chaos/send-run';
import { benchArgs } from './args';

export interface ChaosRow {
  scenario: string;
  what: string;
  in: number;
  delivered: number;
  duplicates: number;
  lost: number;
  /** Copies that reached an address they must not (blocked recipients, injected Bcc). */
  strays: number;
  /** Workflows still running, or emails without their S3 audit tags. */
  unfinished: number;
  recoverSeconds: number | null;
  note: string;
  ok: boolean;
  /** The email the fault aimed at (worker-sigkill-mid-task), and whether it got a second copy anywhere. */
  target?: { key: string; duplicated: boolean };
  /** Long outages: the most emails seen with MailStatus deferred (and running) during the outage. */
  deferredSeen?: number;
  /** send-sigkill*: kills, recovery paths and outbox statuses (duplicates of the no-Sent variant are measured, not failed). */
  send?: Pick<
    SendChaosRow,
    'providerSavesSent' | 'kills' | 'recovery' | 'statuses' | 'expected' | 'duplicatedMessages'
  >;
  /** Inbound scenarios: when each workflow closed and when the fault was on (for the chart, not the JSON). */
  timeline?: InboundOutcome['timeline'];
}

export const SCENARIO_NAMES: string[] = [
  ...INBOUND_SCENARIOS.map((s) => s.name),
  'imap-pg-cut',
  ...WATCH_SCENARIOS.map((s) => s.name),
  ...SEND_SCENARIOS.map((s) => s.name),
];

/**
 * The worker's deferral delays for a shortened run: the first wait (60 s) scaled like the
 * outages, the longest (4000 s) scaled and held to 30 s at most, so mail that waited through a
 * shortened outage is tried again within the run's time. Full length: the defaults (lib/config).
 */
export function deferralEnv(scale: number): Record<string, string> {
  if (scale >= 1) return {};
  const first = Math.max(1, Math.round(60 * scale));
  return {
    DELIVERY_RETRY_FIRST_DELAY: String(first),
    DELIVERY_RETRY_MAX_DELAY: String(Math.max(first, Math.min(30, Math.round(4000 * scale)))),
  };
}

export async function runChaos(opts: {
  scenarios?: string[];
  settings: ChaosSettings;
  syncMessages: number;
  /** Accounts idling under watchers in the watch-* scenarios (default 20). */
  watchAccounts?: number;
  /** Messages and kills per send-sigkill scenario (default 40 and 6). */
  sendMessages?: number;
  sendKills?: number;
  onRow?: (row: ChaosRow) => void;
}): Promise<ChaosRow[]> {
  const wanted = opts.scenarios?.length ? opts.scenarios : SCENARIO_NAMES;
  const unknown = wanted.filter((n) => !SCENARIO_NAMES.includes(n));
  if (unknown.length)
    throw new Error(`unknown chaos scenario(s): ${unknown.join(', ')}; known: ${SCENARIO_NAMES.join(', ')}`);
  const rows: ChaosRow[] = [];
  const stack = await startChaosStack({ workerEnv: deferralEnv(opts.settings.scale) });
  const stopped = onInterrupt(() => stack.stop());
  try {
    for (const sc of INBOUND_SCENARIOS.filter((s) => wanted.includes(s.name))) {
      const r = await runInboundScenario(stack, sc, opts.settings);
      const unfinished = r.open + r.untagged;
      const notes = [
        r.note,
        r.notCompleted ? `${r.notCompleted} workflow(s) failed` : '',
        r.wrongStatus.length ? `unexpected status: ${r.wrongStatus.slice(0, 3).join('; ')}` : '',
        r.lostExamples.length ? `lost e.g. ${r.lostExamples.slice(0, 3).join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; ');
      const row: ChaosRow = {
        scenario: sc.name,
        what: sc.what,
        in: r.emails,
        delivered: r.delivered,
        duplicates: r.duplicates,
        lost: r.lost,
        strays: r.strays,
        unfinished,
        recoverSeconds: r.recoverSeconds === undefined ? null : +r.recoverSeconds.toFixed(1),
        note: `${notes}${notes ? '; ' : ''}statuses ${JSON.stringify(r.statuses)}; ${r.expected} recipient deliveries expected`,
        ok:
          r.lost === 0 &&
          r.strays === 0 &&
          unfinished === 0 &&
          r.notCompleted === 0 &&
          r.wrongStatus.length === 0 &&
          !/NOT STOPPED/.test(r.note ?? ''),
        timeline: r.timeline,
        ...(r.deferredSeen !== undefined ? { deferredSeen: r.deferredSeen } : {}),
        ...(r.target ? { target: { key: r.target, duplicated: r.duplicateKeys.includes(r.target) } } : {}),
      };
      rows.push(row);
      opts.onRow?.(row);
    }
    if (wanted.includes('imap-pg-cut')) {
      const address = stack.temporalAddress();
      const r = await runSyncScenario({
        client: stack.client,
        temporalAddress: address,
        dir: stack.dir,
        messages: opts.syncMessages,
        bar: opts.settings.bar,
      });
      const row: ChaosRow = {
        scenario: 'imap-pg-cut',
        what: 'IMAP connection, then PostgreSQL connection, cut mid-sync',
        in: r.messages,
        delivered: r.stored,
        duplicates: r.duplicates,
        lost: r.lost,
        strays: 0,
        unfinished: r.status === 'succeeded' ? 0 : 1,
        recoverSeconds: +r.recoverSeconds.toFixed(1),
        note: r.note,
        ok: r.lost === 0 && r.duplicates === 0 && r.status === 'succeeded',
      };
      rows.push(row);
      opts.onRow?.(row);
    }
    const watch = WATCH_SCENARIOS.map((s) => s.name).filter((n) => wanted.includes(n));
    if (watch.length) {
      const watchRows = await runWatchScenarios({
        temporalAddress: stack.temporalAddress(),
        scenarios: watch as WatchScenarioName[],
        accounts: opts.watchAccounts ?? 20,
        perAccount: 1,
        scale: opts.settings.scale,
        dir: stack.dir,
      });
      for (const r of watchRows) {
        const row: ChaosRow = {
          scenario: r.scenario,
          what: r.what,
          in: r.in,
          delivered: r.stored,
          duplicates: r.duplicates,
          lost: r.lost,
          strays: 0,
          unfinished: r.watchersIdleAgain ? 0 : 1,
          recoverSeconds: r.recoverSeconds,
          note: r.note,
          ok: r.ok,
        };
        rows.push(row);
        opts.onRow?.(row);
      }
    }
    const send = SEND_SCENARIOS.map((s) => s.name).filter((n) => wanted.includes(n));
    if (send.length) {
      const sendRows = await runSendScenarios({
        temporalAddress: stack.temporalAddress(),
        scenarios: send as SendScenarioName[],
        messages: opts.sendMessages ?? 40,
        kills: opts.sendKills ?? 6,
        dir: stack.dir,
      });
      for (const r of sendRows) {
        const row: ChaosRow = {
          scenario: r.scenario,
          what: r.what,
          in: r.expected,
          delivered: r.delivered,
          duplicates: r.duplicates,
          lost: r.lost,
          strays: 0,
          unfinished: r.messages - (r.statuses.sent ?? 0),
          recoverSeconds: r.recoverSeconds,
          note: r.note,
          ok: r.ok,
          send: {
            providerSavesSent: r.providerSavesSent,
            kills: r.kills,
            recovery: r.recovery,
            statuses: r.statuses,
            expected: r.expected,
            duplicatedMessages: r.duplicatedMessages,
          },
        };
        rows.push(row);
        opts.onRow?.(row);
      }
    }
  } finally {
    stopped();
    await stack.stop();
  }
  return rows;
}

async function main() {
  const { values } = benchArgs(__filename, {
    scenario: { type: 'string', default: '' },
    emails: { type: 'string', default: '200' },
    scale: { type: 'string', default: '1' },
    rate: { type: 'string', default: '20' },
    'sync-messages': { type: 'string', default: '1500' },
    'watch-accounts': { type: 'string', default: '20' },
    'send-messages': { type: 'string', default: '40' },
    'send-kills': { type: 'string', default: '6' },
  });
  const bar = new SingleBar(
    { format: '{phase} [{bar}] {value}/{total}', hideCursor: true, clearOnComplete: true },
    Presets.shades_classic,
  );
  const settings: ChaosSettings = {
    emails: Number(values.emails),
    scale: Number(values.scale),
    rate: Number(values.rate),
    bar,
  };
  const scenarios = values.scenario ? values.scenario.split(',').map((s) => s.trim()) : undefined;
  const started = new Date();
  const rows = await runChaos({
    scenarios,
    settings,
    syncMessages: Number(values['sync-messages']),
    watchAccounts: Number(values['watch-accounts']),
    sendMessages: Number(values['send-messages']),
    sendKills: Number(values['send-kills']),
    onRow: (r) => console.log(line(r)),
  });
  console.log('');
  console.table(
    Object.fromEntries(
      rows.map((r) => [
        r.scenario,
        {
          in: r.in,
          delivered: r.delivered,
          duplicates: r.duplicates,
          lost: r.lost,
          strays: r.strays,
          unfinished: r.unfinished,
          'recover s': r.recoverSeconds ?? '-',
          ok: r.ok ? 'yes' : 'NO',
        },
      ]),
    ),
  );
  const result = {
    when: started.toISOString(),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    settings: {
      ...settings,
      bar: undefined,
      sendMessages: Number(values['send-messages']),
      sendKills: Number(values['send-kills']),
    },
    rows: rows.map(({ timeline: _, ...row }) => row),
  };
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `chaos-${result.when.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`written ${file}`);
  const panels = rows.flatMap((r) =>
    r.timeline
      ? [
          {
            title: r.scenario,
            subtitle: [
              r.what,
              `${r.in} emails, ${r.delivered} delivered, ${r.duplicates} duplicates, ${r.lost} lost${r.recoverSeconds === null ? '' : `; all closed ${r.recoverSeconds} s after the fault was lifted`}`,
            ],
            series: [{ name: 'workflows closed', finishedAt: r.timeline.closedAt }],
            bands: r.timeline.fault ? [r.timeline.fault] : [],
          },
        ]
      : [],
  );
  if (panels.length) {
    const svg = file.replace(/\.json$/, '.svg');
    writeFileSync(
      svg,
      await renderSvg(
        chaosChart(
          `chaos run ${result.when} (${result.machine.cpus} cores${settings.scale !== 1 ? `; outages and waits × ${settings.scale}` : ''})`,
          panels,
        ),
      ),
    );
    console.log(`written ${svg}`);
  }
  if (rows.some((r) => !r.ok)) process.exitCode = 1;
}

function line(r: ChaosRow): string {
  const rec = r.recoverSeconds === null ? 'n/a' : `${r.recoverSeconds} s`;
  return `${r.ok ? 'ok  ' : 'FAIL'} ${r.scenario.padEnd(28)} in ${r.in}, delivered ${r.delivered}, duplicates ${r.duplicates}, lost ${r.lost}, strays ${r.strays}, unfinished ${r.unfinished}, recover ${rec} — ${r.note}`;
}

if (require.main === module) {
  main().catch((err) => {
    if (interrupted()) return; // the signal handler stops everything and exits
    console.error(`chaos failed: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
}
