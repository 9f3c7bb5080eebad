import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A throw-away redis-server for one benchmark scenario (loopback, ephemeral port). */
export interface BenchRedis {
  port: number;
  url: string;
  client(): Redis;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startBenchRedis(notify = ''): Promise<BenchRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-'));
  const proc: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--notify-keyspace-events',
      notify,
      '--enable-debug-command',
      'yes',
      // The benchmark drives Redis hard: never drop the subscriber under test for being slow.
      '--client-output-buffer-limit',
      'pubsub 0 0 0',
    ],
    { stdio: 'ignore' },
  );
  const clients: Redis[] = [];
  for (let i = 0; ; i++) {
    const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (i > 200) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client() {
      const c = new Redis({ port });
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      await new Promise<void>((r) => {
        proc.once('exit', () => r());
        proc.kill('SIGKILL');
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `redis-benchmark` SET EX load on token keys: pipelined, from its own process. */
export function setLoad(
  port: number,
  requests: number,
  pipeline = 16,
  clients = 20,
): { seconds: number; rps: number } {
  const started = performance.now();
  const r = spawnSync(
    'redis-benchmark',
    [
      '-p',
      String(port),
      '-P',
      String(pipeline),
      '-c',
      String(clients),
      '-n',
      String(requests),
      '-r',
      '1000000000',
      '-q',
      'SET',
      'oauth:access:__rand_int__',
      'v',
      'EX',
      '3600',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const seconds = (performance.now() - started) / 1000;
  const m = /([\d.]+) requests per second/.exec(r.stdout.split('\r').at(-1) ?? '');
  return { seconds, rps: m ? Number(m[1]) : requests / seconds };
}
