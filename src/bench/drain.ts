import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { Redis } from 'ioredis';
import type { Committed } from '../audit/record.js';
import { startTokenwatch, untilStable } from './app-under-test.js';
import { startBenchRedis, setLoad } from './bench-redis.js';
import { redisMainThreadCpu } from './redis-cpu.js';
import { percentile, round } from './stats.js';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PEER = join('..', 'shared', 'bench', 'minimal-auditor.mjs');
/** Preloaded into the minimal auditor (which is not ours to change): its CPU time as it exits. */
const CPU_AT_EXIT = `data:text/javascript,${encodeURIComponent(
  'process.on("exit",()=>{const u=process.cpuUsage();process.stderr.write("cpu-at-exit "+(u.user+u.system)+"\\n")})',
)}`;

/**
 * The peer of issue #19: the ~60-line auditor a user could write instead of tokenwatch. It lives
 * beside the repository (../shared/bench/ from its root), not in it, so a clean clone elsewhere
 * runs scenario 1 without it and says so. From a git worktree the root is also the main
 * checkout's (the worktree's own parent has no shared/).
 */
export function minimalAuditorPath(): string {
  const roots = [PROJECT_ROOT];
  try {
    const common = execFileSync(
      'git',
      ['rev-parse', '--path-format=absolute', '--git-common-dir'],
      {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    ).trim();
    roots.push(dirname(common));
  } catch {
    // not a git checkout: the project root alone
  }
  const candidates = roots.map((r) => resolve(r, PEER));
  return candidates.find((c) => existsSync(c)) ?? (candidates[0] as string);
}

export type DrainSide = 'bare' | 'minimal' | 'tokenwatch';

export interface CeilingResult {
  requests: number;
  loadRps: number;
  ceilingEventsPerSec: number;
  tokenwatchEventsPerSec: number;
  /** CPU time of the tokenwatch process (all its threads) per token.written, in µs. */
  tokenwatchCpuUsPerEvent: number;
  /** Of it, the main thread's (the event loop's), in µs; NaN where /proc is not there. */
  tokenwatchMainCpuUsPerEvent: number;
  /** The other threads' CPU per event, largest first (the writer thread, then V8's helpers). */
  tokenwatchOtherThreadsUsPerEvent: number[];
  /** The ledger's queue (records not yet handed to the writer), sampled every 20 ms. */
  tokenwatchLedgerQueue: { p50: number; max: number };
  /** The largest V8 heap (event loop's isolate) sampled during the drain, MB. */
  tokenwatchHeapMaxMb: number;
  ratio: number;
  /** The minimal auditor's committed records/s on the same load; null when it did not run. */
  minimalEventsPerSec: number | null;
  /** Its CPU time per record in µs (the whole process, start-up included: ~0.5 µs at 300 000). */
  minimalCpuUsPerEvent: number | null;
  /**
   * Redis' own CPU per event (its main thread, INFO cpu) through each side's drain: from the end
   * of the load until the side is done, in µs; null when the side did not run. The two cores
   * are shared: tokenwatch's includes its expiry look-ups, which the minimal auditor does not do.
   */
  tokenwatchRedisCpuUsPerEvent: number | null;
  minimalRedisCpuUsPerEvent: number | null;
  /** tokenwatch / minimal auditor (issue #19: >= 1.0 required). */
  ratioToMinimal: number | null;
  /** minimal auditor / bare subscriber. */
  minimalRatio: number | null;
  /** Why the minimal auditor has no figure (file absent, failed), else ''. */
  minimalNote: string;
  recorded: number;
  keysInRedis: number;
  gaps: number;
  lost: number;
}

const CLOCK_TICKS = 100;

/** CPU seconds of thread `tid` of this process so far, from /proc (Linux; throws elsewhere). */
function taskCpuSeconds(tid: string | number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

/** CPU seconds of a bench Redis' main thread so far (redisMainThreadCpu); NaN if INFO failed. */
async function redisCpuSeconds(c: Redis): Promise<number> {
  try {
    return await redisMainThreadCpu(c);
  } catch {
    return Number.NaN;
  }
}

/** µs per event of `seconds` of CPU, rounded; null when unknown (NaN). */
function usPerEvent(seconds: number, events: number): number | null {
  return Number.isFinite(seconds) ? round((seconds * 1e6) / Math.max(1, events), 1) : null;
}

/**
 * CPU seconds of this process' main thread (the event loop) so far (NaN where /proc is not
 * there): what work moved to the writer thread takes off the event loop, which the
 * process-wide figure cannot show.
 */
function mainThreadCpuSeconds(): number {
  try {
    return taskCpuSeconds(process.pid);
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of every thread of this process so far, by thread id (empty where /proc is not there). */
function threadCpuSeconds(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        out.set(tid, taskCpuSeconds(tid));
      } catch {
        // the thread ended between the listing and the read
      }
    }
  } catch {
    // not Linux
  }
  return out;
}

/**
 * Per-event CPU (µs) of the threads other than the event loop over a run, largest first: the
 * writer thread is normally the first, V8's helper threads (GC, compiler) the rest.
 */
function otherThreadsUsPerEvent(
  before: Map<string, number>,
  after: Map<string, number>,
  events: number,
): number[] {
  const out: number[] = [];
  for (const [tid, s] of after) {
    if (tid === String(process.pid)) continue;
    const us = ((s - (before.get(tid) ?? 0)) * 1e6) / Math.max(1, events);
    if (us >= 0.05) out.push(Math.round(us * 10) / 10);
  }
  return out.sort((a, b) => b - a);
}

/** (a) A bare ioredis psubscribe that only counts `set` notifications: the ceiling. */
async function bareSubscriber(requests: number): Promise<{ rate: number; loadRps: number }> {
  const r = await startBenchRedis('Eg$xeh');
  const sub = new Redis({ port: r.port });
  let n = 0;
  let first = 0;
  let last = 0;
  sub.on('pmessageBuffer', (_p: Buffer, channel: Buffer) => {
    if (
      channel.length > 3 &&
      channel[channel.length - 1] === 0x74 &&
      channel[channel.length - 2] === 0x65
    ) {
      // "...:set"
      const t = performance.now();
      if (n === 0) first = t;
      last = t;
      n += 1;
    }
  });
  await sub.psubscribe('__keyevent@0__:*');
  const load = setLoad(r.port, requests);
  await untilStable(() => n);
  sub.disconnect();
  await r.stop();
  return { rate: n / Math.max(0.001, (last - first) / 1000), loadRps: load.rps };
}

interface MinimalResult {
  rate: number | null;
  cpuUsPerEvent: number | null;
  /** Its Redis' main-thread CPU per record from the end of the load until the auditor exits. */
  redisCpuUsPerEvent: number | null;
  note: string;
}

/**
 * (b) The minimal auditor in its own process. It is stopped (SIGSTOP) while the load runs, so
 * that, like the in-process sides whose event loop the synchronous load blocks, it drains a
 * backlog queued in Redis rather than competing with redis-benchmark for the two cores.
 */
async function minimalAuditor(requests: number): Promise<MinimalResult> {
  const peer = minimalAuditorPath();
  if (!existsSync(peer)) {
    return {
      rate: null,
      cpuUsPerEvent: null,
      redisCpuUsPerEvent: null,
      note: `not found: ${peer}`,
    };
  }
  const r = await startBenchRedis('Eg$xeh');
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-minimal-'));
  const child = spawn(
    process.execPath,
    [
      '--import',
      CPU_AT_EXIT,
      peer,
      PROJECT_ROOT,
      String(r.port),
      join(dir, 'minimal.db'),
      String(requests),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve();
      });
      void exited.then((c) => reject(new Error(`exited ${c} before ready: ${err}`)));
    });
    child.kill('SIGSTOP');
    setLoad(r.port, requests);
    const info = r.client();
    const redis0 = await redisCpuSeconds(info);
    child.kill('SIGCONT');
    const timeout = setTimeout(() => child.kill('SIGKILL'), 180_000);
    const code = await exited;
    const redisCpu = (await redisCpuSeconds(info)) - redis0;
    clearTimeout(timeout);
    const m = /diy (\d+)/.exec(out);
    if (code !== 0 || !m) {
      return {
        rate: null,
        cpuUsPerEvent: null,
        redisCpuUsPerEvent: null,
        note: `failed (exit ${code}): ${err.slice(0, 200)}`,
      };
    }
    const cpu = /cpu-at-exit (\d+)/.exec(err);
    return {
      rate: Number(m[1]),
      cpuUsPerEvent: cpu ? Number(cpu[1]) / requests : null,
      redisCpuUsPerEvent: usPerEvent(redisCpu, requests),
      note: '',
    };
  } catch (e) {
    child.kill('SIGKILL');
    return {
      rate: null,
      cpuUsPerEvent: null,
      redisCpuUsPerEvent: null,
      note: `failed: ${(e as Error).message.slice(0, 200)}`,
    };
  } finally {
    await r.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** (c) tokenwatch end to end: notification -> inventory + metrics + audit committed. */
type TokenwatchResult = Awaited<ReturnType<typeof tokenwatchSide>>;

async function tokenwatchSide(requests: number) {
  const r = await startBenchRedis();
  const tw = startTokenwatch(r.url);
  await tw.app.whenReady(60_000);
  let recorded = 0;
  let first = 0;
  let last = 0;
  tw.app.onCommitted((batch: readonly Committed[]) => {
    const t = performance.now();
    for (const c of batch) {
      if (c.input.type !== 'token.written') continue;
      if (recorded === 0) first = t;
      last = t;
      recorded += 1;
    }
  });
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuSeconds();
  const threads0 = threadCpuSeconds();
  const info = r.client();
  await info.ping();
  setLoad(r.port, requests);
  // Asked once the load is done; the event loop drains meanwhile (the first few ms of Redis'
  // delivery go uncounted).
  const redis0 = await redisCpuSeconds(info);
  // What the drain holds in memory while it runs: the ledger's queue and the V8 heap, sampled
  // between the event loop's turns (a busy loop samples less often, not differently). The heap
  // from V8's statistics: process.memoryUsage() also reads the RSS from /proc, which cost the
  // drain's event loop ~0.15 µs per event (1.5 % of it) in a profile.
  const queued: number[] = [];
  let heapMax = 0;
  const sampler = setInterval(() => {
    queued.push(tw.app.ledger.state().pending);
    heapMax = Math.max(heapMax, getHeapStatistics().used_heap_size);
  }, 20);
  await untilStable(() => recorded + tw.app.ledger.lastSeq, 2000);
  const redisCpu = (await redisCpuSeconds(info)) - redis0;
  clearInterval(sampler);
  await tw.app.settle();
  // Every thread of this process (event loop, writer thread), not the load's child process:
  // under other jobs' load the work per event says more than the rate.
  const cpu = process.cpuUsage(cpu0);
  const mainCpu = mainThreadCpuSeconds() - main0;
  const others = otherThreadsUsPerEvent(threads0, threadCpuSeconds(), recorded);
  const rate = recorded / Math.max(0.001, (last - first) / 1000);
  const keys = await r.client().dbsize();
  tw.app.ledger.flush();
  const gaps = tw.app.ledger.list({ type: 'keyspace.gap' }).length;
  const appeared = tw.app.ledger.list({ type: 'token.appeared' }).length;
  await tw.close();
  await r.stop();
  return {
    rate,
    cpuUsPerEvent: (cpu.user + cpu.system) / Math.max(1, recorded),
    mainCpuUsPerEvent: (mainCpu * 1e6) / Math.max(1, recorded),
    otherThreadsUsPerEvent: others,
    redisCpuUsPerEvent: usPerEvent(redisCpu, recorded),
    ledgerQueue: { p50: percentile(queued, 50), max: percentile(queued, 100) },
    heapMaxMb: Math.round(heapMax / 1e6),
    recorded,
    keys,
    gaps,
    lost: Math.max(0, keys - recorded - appeared),
  };
}

/**
 * Scenario 1: the same pipelined SET EX load drained by (a) a bare subscriber, (b) the minimal
 * auditor and (c) tokenwatch, one after the other in the same run, each against its own
 * redis-server. Rates are measured from the first to the last event each side saw. `sides`
 * limits the run (profiling one side); the sides left out report 0 / null. The bare subscriber
 * runs first; the minimal auditor and tokenwatch in the order `sides` names them, so that a
 * caller can alternate which of the two runs second (on a VM whose speed drifts within minutes,
 * the side that always ran second would always meet the drift later).
 */
export async function ceilingVsTokenwatch(
  requests: number,
  sides: readonly DrainSide[] = ['bare', 'minimal', 'tokenwatch'],
): Promise<CeilingResult> {
  const bare = sides.includes('bare') ? await bareSubscriber(requests) : { rate: 0, loadRps: 0 };
  let minimal: MinimalResult = {
    rate: null,
    cpuUsPerEvent: null,
    redisCpuUsPerEvent: null,
    note: 'not run',
  };
  let tw: TokenwatchResult = {
    rate: 0,
    cpuUsPerEvent: 0,
    mainCpuUsPerEvent: 0,
    otherThreadsUsPerEvent: [],
    redisCpuUsPerEvent: null,
    ledgerQueue: { p50: 0, max: 0 },
    heapMaxMb: 0,
    recorded: 0,
    keys: 0,
    gaps: 0,
    lost: 0,
  };
  for (const side of sides) {
    if (side === 'minimal') minimal = await minimalAuditor(requests);
    else if (side === 'tokenwatch') tw = await tokenwatchSide(requests);
  }
  const ratio = (a: number | null, b: number | null) =>
    a !== null && b !== null && a > 0 && b > 0 ? round(a / b, 3) : null;
  return {
    requests,
    loadRps: round(bare.loadRps),
    ceilingEventsPerSec: round(bare.rate),
    tokenwatchEventsPerSec: round(tw.rate),
    tokenwatchCpuUsPerEvent: round(tw.cpuUsPerEvent, 1),
    tokenwatchMainCpuUsPerEvent: round(tw.mainCpuUsPerEvent, 1),
    tokenwatchOtherThreadsUsPerEvent: tw.otherThreadsUsPerEvent,
    tokenwatchLedgerQueue: tw.ledgerQueue,
    tokenwatchHeapMaxMb: tw.heapMaxMb,
    ratio: ratio(tw.rate, bare.rate) ?? 0,
    minimalEventsPerSec: minimal.rate,
    minimalCpuUsPerEvent: minimal.cpuUsPerEvent === null ? null : round(minimal.cpuUsPerEvent, 1),
    tokenwatchRedisCpuUsPerEvent: tw.redisCpuUsPerEvent,
    minimalRedisCpuUsPerEvent: minimal.redisCpuUsPerEvent,
    ratioToMinimal: ratio(tw.rate, minimal.rate),
    minimalRatio: ratio(minimal.rate, bare.rate),
    minimalNote: minimal.note,
    recorded: tw.recorded,
    keysInRedis: tw.keys,
    gaps: tw.gaps,
    lost: tw.lost,
  };
}
