import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { ROOT } from '../audit/dist.js';

const CLI = join(ROOT, 'dist', 'cli.js');
const LOAD = join(import.meta.dirname, 'soak-load.mjs');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A `tokenwatch serve` process, as an operator runs it. */
export interface Serve {
  pid: number;
  /** Stops it with SIGTERM (a clean shutdown) and waits for the exit. */
  stop(): Promise<number | null>;
  output(): string;
}

export async function startServe(configPath: string, port: number): Promise<Serve> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}:\n${out}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`serve not ready in time:\n${out.slice(-4000)}`);
    await sleep(200);
  }
  return {
    pid: child.pid ?? -1,
    output: () => out,
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

export interface Burst {
  start: number;
  end: number;
}

export interface LoadHandle {
  started: number;
  bursts: Burst[];
  stop(): Promise<Record<string, number>>;
}

/** The drill's traffic in its own process (test/soak/soak-load.mjs). */
export async function startLoad(opts: {
  port: number;
  rate: number;
  users: number;
  burstsAt: number[];
  burstSeconds: number;
  burstFactor: number;
}): Promise<LoadHandle> {
  const child = spawn(
    process.execPath,
    [
      LOAD,
      '--port',
      String(opts.port),
      '--rate',
      String(opts.rate),
      '--users',
      String(opts.users),
      '--bursts',
      opts.burstsAt.join(','),
      '--burst-seconds',
      String(opts.burstSeconds),
      '--burst-factor',
      String(opts.burstFactor),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const bursts: Burst[] = [];
  let offered: Record<string, number> | undefined;
  let started = 0;
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = JSON.parse(buf.slice(0, nl)) as {
        ready?: boolean;
        started?: number;
        burst?: Burst;
        offered?: Record<string, number>;
      };
      buf = buf.slice(nl + 1);
      if (line.ready) started = line.started ?? Date.now();
      if (line.burst) bursts.push(line.burst);
      if (line.offered) offered = line.offered;
    }
  });
  while (started === 0) {
    if (child.exitCode !== null) throw new Error('load generator exited');
    await sleep(10);
  }
  return {
    started,
    bursts,
    async stop() {
      await stopChild(child);
      await sleep(50);
      return offered ?? {};
    },
  };
}

/** Resident set size of a process, bytes (Linux /proc). */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Sum of a metric's samples in a Prometheus text exposition, or undefined when absent. */
export function metricSum(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

/** Least-squares slope of y over x. */
export function slope(points: readonly [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export interface ReceivedAlert {
  at: number;
  findingId: string;
  rule: string;
  resolved: boolean;
}

/** A loopback Alertmanager v2 receiver that notes when each alert arrived. */
export async function startTimedReceiver(): Promise<{
  url: string;
  alerts: ReceivedAlert[];
  close(): Promise<void>;
}> {
  const alerts: ReceivedAlert[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/api/v2/alerts') {
        const at = Date.now();
        for (const a of JSON.parse(body) as {
          labels: Record<string, string>;
          endsAt?: string;
        }[]) {
          alerts.push({
            at,
            findingId: a.labels.finding_id ?? '',
            rule: a.labels.rule ?? '',
            resolved: a.endsAt !== undefined,
          });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    alerts,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
