// The IMAP IDLE watcher chaos scenarios (issue 22): N accounts idle under their watchers
// (SYNC_WATCH=true, Schedules at an hour so they take no part), then one fault at a time while
// mail keeps arriving:
//   watch-imap-restart   Dovecot stopped and started again on the same ports and mail; mail
//                        APPENDed before, delivered into the Maildirs while it is down, APPENDed after
//   watch-worker-kill    the sync worker SIGKILLed mid-IDLE, restarted after a pause; mail APPENDed meanwhile
//   watch-network-cut    the TCP proxy between the worker and Dovecot resets every connection and
//                        refuses new ones for a minute; mail APPENDed to Dovecot directly meanwhile
// Each must end with every message in PostgreSQL exactly once (by account/folder/UIDVALIDITY/UID
// and by Message-ID) and every watcher back in IDLE. Recovery: from the fault's end to the last
// message's row. Used by bench/chaos.ts (full length) and test/integration/watch-chaos.test.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import { ArrivalTracker, countDuplicates, MailDrop, type SentMessage } from '../latency/probe';
import { startWatchStack, type WatchStack } from '../latency/stack';
import { onInterrupt, onlyOnce } from './interrupt';

export const WATCH_SCENARIOS = [
  { name: 'watch-imap-restart', what: 'Dovecot restarted while the watchers idle', downSeconds: 10 },
  { name: 'watch-worker-kill', what: 'sync worker SIGKILLed mid-IDLE, restarted', downSeconds: 5 },
  { name: 'watch-network-cut', what: 'network to Dovecot cut (reset, refused)', downSeconds: 60 },
] as const;

export type WatchScenarioName = (typeof WATCH_SCENARIOS)[number]['name'];

export interface WatchChaosRow {
  scenario: WatchScenarioName;
  what: string;
  /** Messages that arrived around the fault. */
  in: number;
  /** Of them, with a row in PostgreSQL by the end. */
  stored: number;
  lost: number;
  /** Extra rows: by (account, folder, UIDVALIDITY, UID) anywhere, plus by (account, Message-ID) of these messages. */
  duplicates: number;
  /** Every watcher idle on a connection again, and no sync running, after the scenario. */
  watchersIdleAgain: boolean;
  /** From the fault's end (server up, worker healthy, network back) to the last row seen. */
  recoverSeconds: number | null;
  downSeconds: number;
  note: string;
  ok: boolean;
}

export interface WatchChaosOptions {
  temporalAddress: string;
  scenarios?: WatchScenarioName[];
  accounts: number;
  /** Messages per account in each phase of a fault (before, during, after). */
  perAccount: number;
  /** Multiplies the outages (the network cut is 60 s at 1). */
  scale: number;
  /** How long to wait for the mail after a fault (default 5 min). */
  deadlineMs?: number;
  /**
   * false: the comparison, Schedules alone (SYNC_WATCH=false) every 10 s, for trying the
   * harness where the watcher is not available; "watchers idle again" then means no sync runs.
   */
  watch?: boolean;
  /** Logs of the worker (default: a temporary directory). */
  dir?: string;
  log?: (line: string) => void;
}

export async function runWatchScenarios(o: WatchChaosOptions): Promise<WatchChaosRow[]> {
  const say = o.log ?? (() => undefined);
  const wanted = o.scenarios ?? WATCH_SCENARIOS.map((s) => s.name);
  const deadlineMs = o.deadlineMs ?? 300_000;
  let stack: WatchStack | undefined;
  const mail = new MailDrop(() => stack!.dovecot());
  const cleanup = onlyOnce(async () => {
    await mail.close();
    await stack?.stop();
  });
  const stopped = onInterrupt(cleanup);
  const rows: WatchChaosRow[] = [];
  try {
    stack = await startWatchStack({
      temporalAddress: o.temporalAddress,
      accounts: o.accounts,
      watch: o.watch ?? true,
      intervalSeconds: (o.watch ?? true) ? 3600 : 10,
      proxy: true,
      dir: o.dir,
      label: 'watch-chaos',
      // Watchers reconnect within seconds of the fault's end (the default cap is 5 min).
      env: { SYNC_WATCH_RECONNECT_MAX_SECONDS: String(Math.max(2, Math.round(30 * Math.min(1, o.scale)))) },
    });
    const s = stack;
    await s.startWorker();
    await s.addAccounts();
    // Each INBOX exists (and its Maildir) before the faults; the watchers' first sync stores these.
    for (const a of s.accounts) await mail.append(a, 'warmup');
    say(`watch chaos: ${o.accounts} accounts; waiting for the watchers to idle ...`);
    await s.waitQuiet(deadlineMs);

    const each = async (fn: (a: (typeof s.accounts)[number]) => Promise<SentMessage> | SentMessage) => {
      const out: SentMessage[] = [];
      for (let i = 0; i < o.perAccount; i++) for (const a of s.accounts) out.push(await fn(a));
      return out;
    };

    for (const sc of WATCH_SCENARIOS.filter((x) => wanted.includes(x.name))) {
      const downMs = Math.max(2000, sc.downSeconds * 1000 * o.scale);
      const tracker = new ArrivalTracker(s.db.pool);
      const track = (list: SentMessage[]) => list.forEach((m) => tracker.track(m));
      say(`${sc.name}: ${sc.what}, ${(downMs / 1000).toFixed(0)} s ...`);
      let liftedAt: number;
      const faultAt = new Date();
      if (sc.name === 'watch-imap-restart') {
        track(await each((a) => mail.append(a, 'before')));
        await s.restartDovecot(async () => {
          await sleep(downMs / 2);
          track(await each((a) => mail.deliverToMaildir(a, 'down')));
          await sleep(downMs / 2);
        });
        liftedAt = Date.now();
        track(await each((a) => mail.append(a, 'after')));
      } else if (sc.name === 'watch-worker-kill') {
        await s.killWorker();
        track(await each((a) => mail.append(a, 'killed')));
        await sleep(downMs);
        track(await each((a) => mail.append(a, 'killed-late')));
        await s.startWorker();
        liftedAt = Date.now();
        track(await each((a) => mail.append(a, 'after')));
      } else {
        await s.proxy!.refuse(true);
        track(await each((a) => mail.append(a, 'cut')));
        await sleep(downMs / 2);
        track(await each((a) => mail.append(a, 'cut-late')));
        await sleep(downMs / 2);
        await s.proxy!.refuse(false);
        liftedAt = Date.now();
        track(await each((a) => mail.append(a, 'after')));
      }
      await tracker.waitAll(deadlineMs);
      tracker.stop();
      const seen = tracker.sent.filter((m) => m.seenAt !== undefined).map((m) => m.seenAt!);
      const lost = tracker.missed().length;
      const recoverSeconds = lost === 0 && seen.length ? (Math.max(...seen) - liftedAt) / 1000 : null;
      let watchersIdleAgain = true;
      let quietNote = '';
      await s.waitQuiet(deadlineMs, faultAt).catch((err: Error) => {
        watchersIdleAgain = false;
        quietNote = err.message;
      });
      const dup = await countDuplicates(s.db.pool, tracker.sent);
      const duplicates = dup.byUid + dup.byMessageId;
      const states = await s.watcherStates();
      const row: WatchChaosRow = {
        scenario: sc.name,
        what: sc.what,
        in: tracker.sent.length,
        stored: tracker.sent.length - dup.missing,
        lost: dup.missing,
        duplicates,
        watchersIdleAgain,
        recoverSeconds: recoverSeconds === null ? null : +recoverSeconds.toFixed(1),
        downSeconds: +(downMs / 1000).toFixed(1),
        note: [
          `${o.accounts} accounts, down ${(downMs / 1000).toFixed(0)} s`,
          `watchers ${JSON.stringify(states)}`,
          lost ? `not seen e.g. ${tracker.missed()[0].messageId}` : '',
          quietNote,
        ]
          .filter(Boolean)
          .join('; '),
        ok: dup.missing === 0 && duplicates === 0 && watchersIdleAgain,
      };
      rows.push(row);
      say(
        `${row.ok ? 'ok  ' : 'FAIL'} ${row.scenario}: in ${row.in}, stored ${row.stored}, lost ${row.lost}, duplicates ${row.duplicates}, recover ${row.recoverSeconds ?? 'n/a'} s — ${row.note}`,
      );
    }
  } finally {
    stopped();
    await cleanup();
  }
  return rows;
}
