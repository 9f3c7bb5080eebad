import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedis, type RedisServer } from './helpers/redis-server.js';
import { waitFor } from './helpers/app-harness.js';

// These tests run the built CLI (`npm test` builds dist/ before vitest runs).
const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');

let dir: string;
let redis: RedisServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tw-cli-'));
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 20_000,
  });
}

describe('tokenwatch CLI', () => {
  it('refuses invalid configs with exit code 2 and the key path', () => {
    const cases: [string, RegExp][] = [
      ['tokens: []\n', /tokens: at least one token rule/],
      ['server: { port: -1 }\ntokens: [{kind: a, key: "a:{token}"}]\n', /server\.port: /],
      [
        'tokens: [{kind: a, key: "a:{token}", maxTtlSeconds: "1h"}]\n',
        /tokens\[0\]\.maxTtlSeconds: /,
      ],
      ['redis: { url: "http://x" }\ntokens: [{kind: a, key: "a:{token}"}]\n', /redis\.url: /],
      ['tokens: [{kind: a, key: "a:{token}"}]\nunknownSection: 1\n', /unknownSection/],
      ['tokens: [\n', /config\.yaml:\d+|\.yaml:\d+/],
    ];
    for (const [i, [yaml, want]] of cases.entries()) {
      const file = join(dir, `bad${i}.yaml`);
      writeFileSync(file, yaml);
      const r = run(['serve', '--config', file]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(want);
      expect(r.stderr).toMatch(/^tokenwatch: invalid configuration/);
    }
    const viaEnv = run(['serve'], { TOKENWATCH_CONFIG: join(dir, 'bad0.yaml') });
    expect(viaEnv.status).toBe(2);
    const badEnv = run(['serve'], { TOKENWATCH_PORT: 'eighty' });
    expect(badEnv.status).toBe(2);
    expect(badEnv.stderr).toMatch(/server\.port \(from TOKENWATCH_PORT\)/);
    const missing = run(['serve', '--config', join(dir, 'nope.yaml')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/cannot read config file/);
  });

  it('answers usage errors with exit code 2', () => {
    expect(run(['frobnicate']).status).toBe(2);
    expect(run(['audit', 'list']).status).toBe(2);
    expect(run(['serve', '--nope']).status).toBe(2);
    expect(run(['--version']).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('serves, records, and stops cleanly on SIGTERM with system.stopped last', async () => {
    const port = await freePort();
    // Each ledger in its own directory: keys and the checkpoint log live beside the DB.
    const db = join(dir, 'serve', 'serve.db');
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: {
        ...process.env,
        TOKENWATCH_REDIS_URL: redis.url,
        TOKENWATCH_PORT: String(port),
        TOKENWATCH_AUDIT_PATH: db,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(
      async () => {
        try {
          return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
        } catch {
          return false;
        }
      },
      15_000,
      'readyz',
    );
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    // runtime.heapGrowthPercent's default reaches V8 before the service starts.
    expect(out).toMatch(/"v8":"--heap-growing-percent=50".*"msg":"tokenwatch starting"/);
    const c = redis.client();
    await c.set('oauth:access:cli-token-secret', 'v', 'EX', 60);
    await waitFor(
      async () =>
        (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).includes(
          'tokenwatch_token_events_total{kind="access_token",event="written"} 1',
        ),
      5000,
      'metric',
    );
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    const list = run(['audit', 'list', '--db', db]);
    expect(list.status).toBe(0);
    const rows = list.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; type: string; time: string });
    expect(rows[0]!.type).toBe('ledger.genesis');
    expect(rows.map((r) => r.type)).toContain('token.written');
    expect(rows.at(-1)!.type).toBe('system.stopped');
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    const filtered = run(['audit', 'list', '--db', db, '--type', 'token.*', '--limit', '1']);
    expect(filtered.stdout.trim().split('\n')).toHaveLength(1);
    expect(out).not.toContain('cli-token-secret');
  });

  it('keeps retrying an unreachable Redis, answers 503 on /readyz, and never logs the password', async () => {
    const port = await freePort();
    const deadRedis = await freePort();
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: {
        ...process.env,
        TOKENWATCH_REDIS_URL: `redis://user:hunter2secret@127.0.0.1:${deadRedis}`,
        TOKENWATCH_PORT: String(port),
        TOKENWATCH_AUDIT_PATH: join(dir, 'dead', 'dead.db'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    let body = '';
    await waitFor(
      async () => {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/readyz`);
          body = await r.text();
          return r.status === 503;
        } catch {
          return false;
        }
      },
      15_000,
      'readyz 503',
    );
    expect(body).toMatch(/keyspace subscriber not connected/);
    await new Promise((r) => setTimeout(r, 1000));
    expect(child.exitCode).toBeNull();
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(out).toContain(`127.0.0.1:${deadRedis}`);
    expect(out).not.toContain('hunter2secret');
  });
});
