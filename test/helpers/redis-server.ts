import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, redisServerArgs, waitForRedis } from '../../src/redis-process.js';

export { freePort };

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  /** A new command client (closed by stop()). */
  client(): Redis;
  /** Stop the server process (SIGTERM, or SIGKILL when `kill`). */
  halt(kill?: boolean): Promise<void>;
  /** Send the server process a signal (SIGSTOP: a node that stops answering, sockets open). */
  signal(sig: NodeJS.Signals): void;
  /** Start it again on the same port and dir (AOF, when enabled, restores the data). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  args?: string[];
  /** Notifications config at start; default none (tokenwatch must turn them on). */
  notify?: string;
}

/**
 * Starts a real `redis-server` on an ephemeral loopback port with its own temp dir. No mocked
 * Redis anywhere in this test suite.
 */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tw-redis-'));
  const clients: Redis[] = [];
  let proc: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const args = redisServerArgs(port, dir, options.notify ?? '', options.args ?? []);
    const p = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    let out = '';
    p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await waitForRedis(port, p, () => out);
  };

  const halt = async (kill = false): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(kill ? 'SIGKILL' : 'SIGTERM');
    });
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    client() {
      const c = new Redis({ port, host: '127.0.0.1' });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    halt,
    signal(sig) {
      proc?.kill(sig);
    },
    restart: launch,
    async stop() {
      for (const c of clients) c.disconnect();
      await halt(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
