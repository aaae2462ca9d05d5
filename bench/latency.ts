// `npm run bench:latency`: how soon new mail is in PostgreSQL, and what an idle account costs
// the sync worker, with IMAP IDLE watchers (SYNC_WATCH=true) and with the Schedules alone.
//   --accounts N          Dovecot users / mailroom accounts (default 50)
//   --messages M          messages appended during the latency run (default 1000)
//   --rate R              APPENDs per second, spread round-robin over the accounts (default 10)
//   --watchers on|off|both  which mode(s) to run (default both; each on a fresh stack)
//   --idle-seconds S      how long the worker is watched idle, with 0 and with N accounts (default 30)
//   --interval-minutes I  the Schedule interval with watchers off (default 1, so the comparison
//                         finishes; production's default is 15)
//   --restart-imap-at S   restart Dovecot S seconds into the APPENDs (down --restart-down
//                         seconds, default 2): mail keeps arriving, APPENDs wait for the server
//   --restart-down D      how long Dovecot stays down in that restart
// Per mode: a scratch database, Dovecot with N users, the Temporal dev server and the sync worker
// as its own process (npm run sync:worker's flags). The worker's resident memory and CPU
// (its process tree, from /proc) are read over an idle window before any account exists and
// again once the N accounts are idle (watchers connected and IDLE, no sync running); the
// difference divided by N is the cost of an idle account. Then M messages are APPENDed at R/s,
// each with a unique Message-ID, and PostgreSQL is polled every 50 ms for its row: latency is
// APPEND completion to row visible. Prints the figures, writes bench/results/latency-<time>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { cpuSecondsOf, dovecotCpuSeconds, machineBusy, memoryOf, processTree, serverCpuSeconds } from './procstat';
import { ArrivalTracker, countDuplicates, MailDrop, summarize, tail, type LatencySummary } from './latency/probe';
import { startWatchStack, type WatchStack } from './latency/stack';
import { startTestTemporal } from '../test/support/temporal';
import { quietTemporalLogs } from '../test/integration/sync-fixtures';
import { benchArgs } from './args';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface IdleSample {
  seconds: number;
  accounts: number;
  /** Worker process tree: mean resident memory over the window, MiB. */
  rssMiB: number;
  /** Worker process tree: resident memory after a full garbage collection at the window's end, MiB. */
  rssAfterGcMiB: number;
  /**
   * The worker's main thread's live JavaScript memory after that collection (V8 heap used plus
   * external): the activities and their IMAP connections. Workflows run in worker threads (their
   * own heaps), which only the RSS includes.
   */
  jsAfterGcMiB?: number;
  /** Worker process tree: CPU used over the window, as a share of one core (1 = 100 %). */
  cpuCores: number;
  /** The Temporal dev server over the same window (CPU share of one core). */
  temporalCores: number;
  /** The whole machine's busy share over the window (others' work included). */
  machineBusy: number;
}

export interface ModeResult {
  mode: 'watchers' | 'schedule';
  note: string;
  idle: {
    baseline: IdleSample;
    /** With half the accounts (absent with fewer than 4 accounts). */
    half?: IdleSample;
    loaded: IdleSample;
    /** (loaded − baseline) / N: includes one-off costs (code first loaded and compiled by the first sync and watch). */
    perAccount: { rssKiB: number; jsKiB: number | null; cpuPercentOfCore: number };
    /** (loaded − half) / (N − N/2): the cost of one more account once those one-off costs are paid. */
    marginalPerAccount?: { rssKiB: number; jsKiB: number | null; cpuPercentOfCore: number };
  };
  latency: LatencySummary & { missed: number; appended: number; runSeconds: number };
  /** The Dovecot restart during the APPENDs (--restart-imap-at), when there was one. */
  restart?: { atSeconds: number; downSeconds: number; upAfterSeconds?: number };
  /** CPU (cores) from the first APPEND to the last row seen; absent in older results. */
  load?: {
    seconds: number;
    workerCores: number;
    temporalCores: number;
    postgresCores: number;
    dovecotCores: number;
    benchCores: number;
    machineBusy: number;
  };
  duplicates: { byUid: number; byMessageId: number };
  watcherStates: Record<string, number>;
  /**
   * Dovecot's warnings and errors during the run (first few). "inotify" ones matter: past
   * fs.inotify.max_user_instances (128 per user by default, shared by every Dovecot on the
   * machine) IDLE falls back to looking every 30 s (mailbox_idle_check_interval).
   */
  dovecotWarnings: string[];
}

const treeRss = (pid: number) => processTree(pid).reduce((s, p) => s + memoryOf(p).rssMiB, 0);

/**
 * Until the worker's resident memory has stopped moving (within 2 MiB over 10 s, at most
 * `maxSeconds`): right after start it holds the workflow bundling's garbage, and after the
 * accounts were added the first syncs', which V8 gives back over tens of seconds.
 */
async function settle(stack: WatchStack, maxSeconds: number): Promise<void> {
  const pid = stack.workerPid();
  if (!pid) return;
  stack.collectGarbage();
  const recent: number[] = [];
  const deadline = Date.now() + maxSeconds * 1000;
  while (Date.now() < deadline) {
    recent.push(treeRss(pid));
    if (recent.length > 10) recent.shift();
    if (recent.length === 10 && Math.max(...recent) - Math.min(...recent) <= 2) return;
    await sleep(1000);
  }
}

/** Live JavaScript memory per account between two samples (KiB); null when the worker did not report it. */
function jsPerAccount(a: IdleSample, b: IdleSample, accounts: number): number | null {
  if (a.jsAfterGcMiB === undefined || b.jsAfterGcMiB === undefined) return null;
  return Math.round(((a.jsAfterGcMiB - b.jsAfterGcMiB) * 1024) / accounts);
}

/** Watches the worker's process tree for `seconds`, sampling memory every second. */
async function idleWindow(stack: WatchStack, seconds: number, accounts: number): Promise<IdleSample> {
  const pid = stack.workerPid();
  if (!pid) throw new Error('the sync worker is not running');
  const treeCpu = () => processTree(pid).reduce((s, p) => s + cpuSecondsOf(p), 0);
  const busy = machineBusy();
  const servers0 = serverCpuSeconds();
  const cpu0 = treeCpu();
  const t0 = Date.now();
  const rss: number[] = [];
  while (Date.now() - t0 < seconds * 1000) {
    rss.push(treeRss(pid));
    await sleep(1000);
  }
  const elapsed = (Date.now() - t0) / 1000;
  const servers1 = serverCpuSeconds();
  const cpu1 = treeCpu();
  stack.collectGarbage();
  await sleep(3000);
  const rssAfterGcMiB = treeRss(pid);
  const mem = stack.workerMemory();
  return {
    seconds: +elapsed.toFixed(1),
    accounts,
    rssMiB: +(rss.reduce((a, b) => a + b, 0) / rss.length).toFixed(1),
    rssAfterGcMiB,
    ...(mem ? { jsAfterGcMiB: +((mem.heapUsed + mem.external) / 1048576).toFixed(1) } : {}),
    cpuCores: +((cpu1 - cpu0) / elapsed).toFixed(4),
    temporalCores: +((servers1.temporal - servers0.temporal) / elapsed).toFixed(4),
    machineBusy: +busy().toFixed(3),
  };
}

export async function runMode(o: {
  watch: boolean;
  accounts: number;
  messages: number;
  rate: number;
  idleSeconds: number;
  intervalMinutes: number;
  /** Restart Dovecot this many seconds into the APPENDs (absent: no restart). */
  restartImapAt?: number;
  restartDownSeconds?: number;
  log?: (line: string) => void;
}): Promise<ModeResult> {
  const say = o.log ?? ((l: string) => console.log(l));
  const mode = o.watch ? 'watchers' : 'schedule';
  // With watchers the Schedule is only the safety net: an hour, so it does not take part.
  const intervalSeconds = o.watch ? 3600 : Math.max(10, Math.round(o.intervalMinutes * 60));
  const env = await startTestTemporal();
  let stack: WatchStack | undefined;
  const drop = () => stack!.dovecot();
  const mail = new MailDrop(drop);
  try {
    stack = await startWatchStack({
      temporalAddress: env.address,
      accounts: o.accounts,
      watch: o.watch,
      intervalSeconds,
    });
    say(`[${mode}] stack up (task queue ${stack.taskQueue}); starting the sync worker ...`);
    await stack.startWorker();
    await settle(stack, 120);
    say(`[${mode}] worker idle with 0 accounts for ${o.idleSeconds} s ...`);
    const baseline = await idleWindow(stack, o.idleSeconds, 0);

    // Without watchers, a window covers at least one whole interval (one round of syncs).
    const loadedSeconds = o.watch ? o.idleSeconds : Math.max(o.idleSeconds, intervalSeconds);
    const idleWith = async (count: number) => {
      say(`[${mode}] ${count} accounts: adding and reconciling ...`);
      await stack!.addAccounts(count);
      // Every account's INBOX exists before anything is measured (Dovecot creates it at the first login).
      for (const a of stack!.accounts) await mail.append(a, 'warmup');
      await stack!.waitQuiet(o.watch ? 300_000 : 30_000);
      // Without watchers the warm-up messages arrive with the first scheduled syncs.
      if (!o.watch) await warmupArrived(stack!, intervalSeconds);
      await settle(stack!, 120);
      await stack!.waitQuiet(60_000);
      say(`[${mode}] worker with ${count} idle accounts for ${loadedSeconds} s ...`);
      return idleWindow(stack!, loadedSeconds, count);
    };
    const halfCount = Math.floor(o.accounts / 2);
    const half = o.accounts >= 4 ? await idleWith(halfCount) : undefined;
    const loaded = await idleWith(o.accounts);
    const watcherStates = await stack.watcherStates();

    say(`[${mode}] appending ${o.messages} messages at ${o.rate}/s over ${o.accounts} accounts ...`);
    const tracker = new ArrivalTracker(stack.db.pool);
    // Where the CPU goes while the mail arrives: the worker, the Temporal server, PostgreSQL, and
    // the whole machine (Dovecot and this process included).
    const workerPid = stack.workerPid()!;
    const workerCpu = () => processTree(workerPid).reduce((n, p) => n + cpuSecondsOf(p), 0);
    const busyDuring = machineBusy();
    const servers0 = serverCpuSeconds();
    const worker0 = workerCpu();
    const dovecot0 = dovecotCpuSeconds();
    const self0 = process.cpuUsage();
    const t0 = Date.now();
    const appends: Promise<void>[] = [];
    // The at-review fault: the IMAP server restarted while mail keeps arriving.
    let restart: { atSeconds: number; downSeconds: number; upAfterSeconds?: number } | undefined;
    const restarted =
      o.restartImapAt === undefined
        ? Promise.resolve()
        : sleep(o.restartImapAt * 1000).then(async () => {
            const down = o.restartDownSeconds ?? 2;
            say(`[${mode}] restarting Dovecot (down ${down} s) ...`);
            await stack!.restartDovecot(async () => {
              await sleep(down * 1000);
            });
            restart = { atSeconds: o.restartImapAt!, downSeconds: down, upAfterSeconds: (Date.now() - t0) / 1000 };
            say(`[${mode}] Dovecot back ${restart.upAfterSeconds!.toFixed(1)} s into the run`);
          });
    for (let i = 0; i < o.messages; i++) {
      const due = t0 + (i * 1000) / o.rate;
      if (due > Date.now()) await sleep(due - Date.now());
      const account = stack.accounts[i % stack.accounts.length];
      appends.push(mail.append(account, 'lat').then((m) => tracker.track(m)));
    }
    await Promise.all(appends);
    await restarted;
    const runSeconds = (Date.now() - t0) / 1000;
    // Long enough for a missed IDLE event to be caught some other way, or for a whole interval.
    const waitMs = o.watch ? 60_000 : intervalSeconds * 1000 + 120_000;
    say(`[${mode}] all appended in ${runSeconds.toFixed(1)} s; waiting up to ${waitMs / 1000} s for the rows ...`);
    await tracker.waitAll(waitMs);
    tracker.stop();
    const loadSeconds = (Date.now() - t0) / 1000;
    const servers1 = serverCpuSeconds();
    const load = {
      seconds: +loadSeconds.toFixed(1),
      workerCores: +((workerCpu() - worker0) / loadSeconds).toFixed(3),
      temporalCores: +((servers1.temporal - servers0.temporal) / loadSeconds).toFixed(3),
      postgresCores: +((servers1.postgres - servers0.postgres) / loadSeconds).toFixed(3),
      dovecotCores: +((dovecotCpuSeconds() - dovecot0) / loadSeconds).toFixed(3),
      // This benchmark itself: the APPENDs and the polling of PostgreSQL for the rows.
      benchCores: +((process.cpuUsage(self0).user + process.cpuUsage(self0).system) / 1e6 / loadSeconds).toFixed(3),
      machineBusy: +busyDuring().toFixed(3),
    };
    say(
      `[${mode}] CPU while the mail arrived (${load.seconds} s): worker ${load.workerCores}, Temporal ${load.temporalCores}, PostgreSQL ${load.postgresCores}, Dovecot ${load.dovecotCores}, this benchmark ${load.benchCores} cores; machine ${(load.machineBusy * 100).toFixed(0)} % busy`,
    );
    const dup = await countDuplicates(stack.db.pool, tracker.sent);
    const summary = summarize(tracker.latencies());
    const dovecotWarnings = tail(stack.dovecot().logPath, 1_000_000)
      .split('\n')
      .filter((l) => /(warning|error|fatal|panic):/i.test(l) || /inotify/i.test(l))
      .slice(0, 10);
    for (const w of dovecotWarnings) say(`[${mode}] dovecot: ${w}`);
    return {
      mode,
      note: o.watch
        ? 'IMAP IDLE watchers (SYNC_WATCH=true), Schedules at 1 h'
        : `Schedules alone (SYNC_WATCH=false) every ${o.intervalMinutes} min (production default 15 min)`,
      idle: {
        baseline,
        loaded,
        perAccount: {
          rssKiB: Math.round(((loaded.rssAfterGcMiB - baseline.rssAfterGcMiB) * 1024) / o.accounts),
          jsKiB: jsPerAccount(loaded, baseline, o.accounts),
          cpuPercentOfCore: +(((loaded.cpuCores - baseline.cpuCores) * 100) / o.accounts).toFixed(4),
        },
        ...(half
          ? {
              half,
              marginalPerAccount: {
                rssKiB: Math.round(((loaded.rssAfterGcMiB - half.rssAfterGcMiB) * 1024) / (o.accounts - halfCount)),
                jsKiB: jsPerAccount(loaded, half, o.accounts - halfCount),
                cpuPercentOfCore: +(((loaded.cpuCores - half.cpuCores) * 100) / (o.accounts - halfCount)).toFixed(4),
              },
            }
          : {}),
      },
      latency: { ...summary, missed: tracker.missed().length, appended: tracker.sent.length, runSeconds },
      ...(restart ? { restart } : {}),
      load,
      duplicates: { byUid: dup.byUid, byMessageId: dup.byMessageId },
      watcherStates,
      dovecotWarnings,
    };
  } finally {
    await mail.close();
    await stack?.stop();
    await env.teardown();
  }
}

async function warmupArrived(stack: WatchStack, intervalSeconds: number): Promise<void> {
  const deadline = Date.now() + (intervalSeconds + 120) * 1000;
  for (;;) {
    const r = await stack.db.pool.query<{ n: string }>('SELECT count(DISTINCT account_id) AS n FROM messages');
    if (Number(r.rows[0].n) >= stack.accounts.length) return;
    if (Date.now() > deadline) throw new Error('the first scheduled syncs did not store the warm-up messages');
    await sleep(500);
  }
}

const ms = (v: number | null) => (v === null ? '-' : `${(v / 1000).toFixed(2)} s`);

async function main(): Promise<void> {
  const { values } = benchArgs(__filename, {
    accounts: { type: 'string', default: '50' },
    messages: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '10' },
    watchers: { type: 'string', default: 'both' },
    'idle-seconds': { type: 'string', default: '30' },
    'interval-minutes': { type: 'string', default: '1' },
    'restart-imap-at': { type: 'string' },
    'restart-down': { type: 'string', default: '2' },
  });
  const num = (name: keyof typeof values, min: number) => {
    const v = Number(values[name]);
    if (!Number.isFinite(v) || v < min) throw new Error(`--${name} ${values[name]}: must be a number >= ${min}`);
    return v;
  };
  const settings = {
    accounts: Math.floor(num('accounts', 1)),
    messages: Math.floor(num('messages', 1)),
    rate: num('rate', 0.01),
    idleSeconds: num('idle-seconds', 1),
    intervalMinutes: num('interval-minutes', 0.2),
    ...(values['restart-imap-at'] !== undefined
      ? { restartImapAt: num('restart-imap-at', 0), restartDownSeconds: num('restart-down', 0) }
      : {}),
  };
  const which = values.watchers;
  if (!['on', 'off', 'both'].includes(which!)) throw new Error(`--watchers ${which}: on, off or both`);
  const modes = which === 'both' ? [true, false] : [which === 'on'];
  quietTemporalLogs();
  const started = new Date();
  const results: ModeResult[] = [];
  for (const watch of modes) results.push(await runMode({ watch, ...settings }));

  console.log('');
  console.table(
    Object.fromEntries(
      results.map((r) => [
        r.mode,
        {
          p50: ms(r.latency.p50),
          p95: ms(r.latency.p95),
          p99: ms(r.latency.p99),
          max: ms(r.latency.max),
          missed: r.latency.missed,
          duplicates: r.duplicates.byUid + r.duplicates.byMessageId,
          'RSS/account KiB': r.idle.perAccount.rssKiB,
          'CPU/account % core': r.idle.perAccount.cpuPercentOfCore,
          'marginal RSS/account KiB': r.idle.marginalPerAccount?.rssKiB ?? '-',
          // Live JS memory of the main thread (activities, IMAP connections; heap used + external
          // after a full GC). The workflows run in worker threads, which only RSS sees.
          'main-thread JS/account KiB (vs 0 / marginal)': `${r.idle.perAccount.jsKiB ?? '-'} / ${r.idle.marginalPerAccount?.jsKiB ?? '-'}`,
          'marginal CPU/account % core': r.idle.marginalPerAccount?.cpuPercentOfCore ?? '-',
          'worker RSS after GC, MiB (0 → N)': `${r.idle.baseline.rssAfterGcMiB} → ${r.idle.loaded.rssAfterGcMiB}`,
        },
      ]),
    ),
  );
  for (const r of results) console.log(`${r.mode}: ${r.note}`);
  const out = {
    when: started.toISOString(),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    settings,
    results,
  };
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `latency-${out.when.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`written ${file}`);
  if (results.some((r) => r.latency.missed > 0 || r.duplicates.byUid + r.duplicates.byMessageId > 0))
    process.exitCode = 1;
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`latency bench failed: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
}
