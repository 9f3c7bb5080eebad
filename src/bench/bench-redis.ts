import { spawnSync } from 'node:child_process';
import { startRedisProcess, type RedisProcess } from '../redis-process.js';

/** A throw-away redis-server for one benchmark scenario (loopback, ephemeral port). */
export type BenchRedis = RedisProcess;

export function startBenchRedis(notify = ''): Promise<BenchRedis> {
  return startRedisProcess([
    '--notify-keyspace-events',
    notify,
    '--enable-debug-command',
    'yes',
    // The benchmark drives Redis hard: never drop the subscriber under test for being slow.
    '--client-output-buffer-limit',
    'pubsub 0 0 0',
  ]);
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
