import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A `redis-server` child process on a loopback port, with its own temp dir. */
export interface RedisProcess {
  port: number;
  url: string;
  /** A new client (closed by stop()). */
  client(): Redis;
  /** Stops the server and removes its dir. Idempotent. */
  stop(): Promise<void>;
}

/** A free loopback TCP port (bound, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Resolves once a `redis-server` child answers PING on `port`; rejects when it exits first
 * (with what it printed) or after `timeoutMs`.
 */
export async function waitForRedis(
  port: number,
  proc: ChildProcess,
  output: () => string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited: ${output()}`);
    const probe = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server did not start: ${output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Arguments of a throw-away `redis-server`: loopback `port`, no persistence, files in `dir`,
 * notification flags `notify`, then `extra` (later ones win).
 */
export function redisServerArgs(
  port: number,
  dir: string,
  notify: string,
  extra: readonly string[] = [],
): string[] {
  return [
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
    ...extra,
  ];
}

/**
 * Starts a throw-away `redis-server` from PATH (demo, benchmarks): loopback, no persistence,
 * no notification flags (tokenwatch sets them itself), plus `extraArgs` (later ones win).
 */
export async function startRedisProcess(extraArgs: readonly string[] = []): Promise<RedisProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tokenwatch-redis-'));
  const args = redisServerArgs(port, dir, '', extraArgs);
  let out = '';
  const proc: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const spawnError = new Promise<never>((_, reject) =>
    proc.once('error', (err) =>
      reject(new Error(`cannot start redis-server (${err.message}); is it on PATH?`)),
    ),
  );
  const clients: Redis[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const c of clients) c.disconnect();
      if (proc.exitCode === null && proc.signalCode === null) {
        await new Promise<void>((resolve) => {
          proc.once('exit', () => resolve());
          proc.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    })());

  try {
    await Promise.race([waitForRedis(port, proc, () => out), spawnError]);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client() {
      const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    stop,
  };
}
