import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { Fingerprinter } from '../audit/fingerprint.js';
import { readKeys, unescapeMonitorArg } from '../keyspace/read-commands.js';
import { TokenRules } from '../keyspace/token-rules.js';
import { startBenchRedis } from './bench-redis.js';
import { redisMainThreadCpu } from './redis-cpu.js';
import { median, round } from './stats.js';

/** One redis-benchmark GET run. */
export interface GetRun {
  rps: number;
  p50ms: number;
  p99ms: number;
  /** Redis main-thread CPU (user + sys) per GET, microseconds: steadier than rps on a shared box. */
  cpuUsPerGet: number;
}

export interface CacheCostResult {
  requests: number;
  /** Share of the GETs that hit (the rest miss and, with `m`, each publish a keymiss). */
  hitShare: number;
  /** Flags Eg$xeh, a keyspace subscriber connected: today's cost baseline. */
  off: GetRun;
  /** Flags Eg$xehm: every miss is published to the subscriber. */
  keyMisses: GetRun;
  /** Flags Eg$xehm and a MONITOR connection that classifies every line: inside a window. */
  sampling: GetRun;
  keyMissesCost: number;
  samplingCost: number;
  /** Default duty cycle: metrics.readSampling windowMs / (everySeconds * 1000). */
  defaultDutyCycle: number;
  /** What a window costs on top of `m`: 1 - sampling.rps / keyMisses.rps. */
  windowCost: number;
  /** The same in Redis CPU per GET: sampling.cpu / keyMisses.cpu - 1. */
  windowCpuCost: number;
  /** Sampling's average throughput cost at the default duty cycle: duty * windowCost. */
  averageCost: number;
  runs: { off: GetRun[]; keyMisses: GetRun[]; sampling: GetRun[] };
}

/** The defaults of metrics.readSampling (src/config/cache-health-schema.ts). */
export const DEFAULT_WINDOW_MS = 1000;
export const DEFAULT_EVERY_SECONDS = 300;

const KEYS = 100_000;

/**
 * One redis-benchmark GET run, spawned asynchronously: the subscriber and the MONITOR connection
 * of this process must keep reading while it runs, as tokenwatch's do.
 */
async function getLoad(c: Redis, port: number, requests: number): Promise<GetRun> {
  const cpu0 = await redisMainThreadCpu(c);
  const args = [
    '-p',
    String(port),
    '-P',
    '16',
    '-c',
    '20',
    '-n',
    String(requests),
    '-r',
    String(KEYS),
    '--csv',
    'GET',
    'oauth:access:__rand_int__',
  ];
  const child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', () => resolve());
  });
  const line = out
    .split(/[\r\n]/)
    .map((l) => l.trim())
    .find((l) => l.startsWith('"GET'));
  const cols = (line ?? '').split(',').map((c) => Number(c.replace(/"/g, '')));
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  if (cols.length < 8) throw new Error(`unexpected redis-benchmark output: ${out}`);
  const cpu = (await redisMainThreadCpu(c)) - cpu0;
  return {
    rps: cols[1] as number,
    p50ms: cols[4] as number,
    p99ms: cols[6] as number,
    cpuUsPerGet: round((cpu * 1e6) / requests, 3),
  };
}

const med = (runs: GetRun[]): GetRun => ({
  rps: round(median(runs.map((r) => r.rps))),
  p50ms: round(median(runs.map((r) => r.p50ms)), 3),
  p99ms: round(median(runs.map((r) => r.p99ms)), 3),
  cpuUsPerGet: round(median(runs.map((r) => r.cpuUsPerGet)), 3),
});

/**
 * Scenario 7: what keymiss counting and MONITOR sampling cost Redis. A GET-heavy load
 * (redis-benchmark, -P 16 -c 20, half of the keys present) against one Redis, with a keyspace
 * subscriber that counts (as tokenwatch's is) in every configuration:
 * (a) flags Eg$xeh, (b) Eg$xehm (every miss publishes a keymiss), (c) Eg$xehm plus a MONITOR
 * connection whose lines are parsed and classified by the token rules, as a sampling window does.
 * The three alternate `reps` times; medians are reported.
 */
export async function cacheCost(requests: number, reps = 3): Promise<CacheCostResult> {
  const redis = await startBenchRedis('Eg$xeh');
  const c = new Redis({ port: redis.port });
  const sub = new Redis({ port: redis.port });
  let notified = 0;
  sub.on('pmessageBuffer', () => (notified += 1));
  await sub.psubscribe('__keyevent@0__:*');
  // Keys 0 .. KEYS/2-1 exist, in redis-benchmark's __rand_int__ spelling (12 digits).
  for (let i = 0; i < KEYS / 2; i += 5000) {
    const p = c.pipeline();
    for (let j = i; j < i + 5000; j++) p.set(`oauth:access:${String(j).padStart(12, '0')}`, 'v');
    await p.exec();
  }
  const rules = new TokenRules(
    [
      {
        kind: 'access_token',
        key: 'oauth:access:{token}',
        secret: [],
        requireProviderEvent: false,
      },
    ],
    new Fingerprinter([{ id: 'bench', key: Buffer.alloc(32, 7) }]),
  );
  const runs = { off: [] as GetRun[], keyMisses: [] as GetRun[], sampling: [] as GetRun[] };
  for (let i = 0; i < reps; i++) {
    await c.config('SET', 'notify-keyspace-events', 'Eg$xeh');
    runs.off.push(await getLoad(c, redis.port, requests));
    await c.config('SET', 'notify-keyspace-events', 'Eg$xehm');
    runs.keyMisses.push(await getLoad(c, redis.port, requests));
    const monitor = c.duplicate({ monitor: true, lazyConnect: false });
    monitor.on('error', () => undefined);
    await new Promise<void>((resolve) => monitor.once('monitoring', () => resolve()));
    let reads = 0;
    monitor.on('monitor', (_t: string, args: string[]) => {
      for (const k of readKeys(args)) if (rules.identify(unescapeMonitorArg(k))) reads += 1;
    });
    runs.sampling.push(await getLoad(c, redis.port, requests));
    monitor.disconnect();
    if (reads === 0) throw new Error('the MONITOR connection saw no reads');
  }
  sub.disconnect();
  c.disconnect();
  await redis.stop();
  if (notified === 0) throw new Error('the subscriber saw no keymiss');
  const off = med(runs.off);
  const keyMisses = med(runs.keyMisses);
  const sampling = med(runs.sampling);
  const keyMissesCost = round(1 - keyMisses.rps / off.rps, 4);
  const samplingCost = round(1 - sampling.rps / off.rps, 4);
  const windowCost = round(1 - sampling.rps / keyMisses.rps, 4);
  const defaultDutyCycle = round(DEFAULT_WINDOW_MS / (DEFAULT_EVERY_SECONDS * 1000), 5);
  return {
    requests,
    hitShare: 0.5,
    off,
    keyMisses,
    sampling,
    keyMissesCost,
    samplingCost,
    defaultDutyCycle,
    windowCost,
    windowCpuCost: round(sampling.cpuUsPerGet / keyMisses.cpuUsPerGet - 1, 4),
    averageCost: round(defaultDutyCycle * windowCost, 4),
    runs,
  };
}

/** The scenario's rows of docs/benchmarks.md. */
export function cacheCostRows(r: CacheCostResult): string {
  const pct = (x: number) => `${round(x * 100, 1)} %`;
  const run = (g: GetRun) =>
    `${g.rps} GET/s, p50 ${g.p50ms} ms, p99 ${g.p99ms} ms, Redis CPU ${g.cpuUsPerGet} µs/GET`;
  return [
    `| 7 | GET-heavy load (${r.requests} GETs, half miss), flags Eg$xeh, subscriber connected | ${run(r.off)} | | |`,
    `| 7 | same, \`m\` on (metrics.keyMisses, every miss published): throughput cost | ${run(r.keyMisses)}; ${pct(r.keyMissesCost)} | | |`,
    `| 7 | same, inside a MONITOR sampling window: cost on top of \`m\` (throughput; Redis CPU per GET) | ${run(r.sampling)}; ${pct(r.windowCost)}; ${pct(r.windowCpuCost)} | | |`,
    `| 7 | sampling's average cost at the default duty cycle (${DEFAULT_WINDOW_MS} ms every ${DEFAULT_EVERY_SECONDS} s = ${pct(r.defaultDutyCycle)}) | ${pct(r.averageCost)} | < 2 % | ${r.averageCost < 0.02 ? 'met' : '**missed**'} |`,
  ].join('\n');
}
