import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { waitFor } from '../helpers/app-harness.js';
import { databaseBytes } from '../helpers/provider-app.js';
import { type RedisServer, freePort, startRedis } from '../helpers/redis-server.js';
import { canary } from './leak-check.js';

/**
 * The attacks of the suite once more against a real `tokenwatch serve` process (the built CLI:
 * `npm run build` first): a token in the admin query string, refused webhooks and admin requests
 * carrying canaries. Then SIGTERM, and the canaries are searched for in the
 * database, its WAL and everything the process wrote to stdout/stderr.
 */

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli.js');
const ADMIN = 'admin-token-for-the-serve-test-0123456789';
const AUTH0_TOKEN = 'auth0-stream-token-0123456789';

let redis: RedisServer;
let dir: string;
beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'tw-serve-sec-'));
});
afterAll(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('tokenwatch serve under attack', () => {
  it('refuses, records only names/lengths/fingerprints; no canary in the DB, WAL or output', async () => {
    const port = await freePort();
    const db = join(dir, 'serve.db');
    const config = join(dir, 'tokenwatch.yaml');
    writeFileSync(
      config,
      `server:
  port: ${port}
  timeouts: { requestSeconds: 2, headersSeconds: 2 }
redis:
  url: ${redis.url}
audit:
  path: ${db}
tokens:
  - kind: access_token
    key: 'oauth:access:{token}'
providers:
  auth0:
    token: ${AUTH0_TOKEN}
admin:
  tokens:
    - name: auditor
      sha256: ${createHash('sha256').update(ADMIN).digest('hex')}
`,
    );
    let output = '';
    const child: ChildProcess = spawn(process.execPath, [CLI, 'serve', '--config', config], {
      env: { ...process.env, TOKENWATCH_LOG_LEVEL: 'debug' },
    });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200,
        30_000,
        'serve ready',
      );
      const c = {
        query: canary('q'),
        header: canary('h'),
        body: canary('b'),
        bearer: canary('t'),
      };
      const inQuery = await fetch(`${base}/v1/findings?access_token=${ADMIN}`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      expect(inQuery.status).toBe(400);
      const admin = await fetch(`${base}/v1/audit/records?type=${c.query}`, {
        headers: { authorization: `Bearer ${c.bearer}`, 'x-trace': c.header },
      });
      expect(admin.status).toBe(401);
      const hook = await fetch(`${base}/v1/providers/auth0/logs?secret=${c.query}`, {
        method: 'POST',
        headers: {
          authorization: c.bearer,
          'content-type': 'application/json',
          'x-note': c.header,
        },
        body: JSON.stringify([{ password: c.body }]),
      });
      expect(hook.status).toBe(401);
      const ok = await fetch(`${base}/v1/findings`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      expect(ok.status).toBe(200);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);

      // Not vacuous: the refusals were recorded.
      const conn = new Database(db, { readonly: true });
      const rows = conn
        .prepare(
          "SELECT type, attrs FROM records WHERE type IN ('admin.access', 'provider.rejected')",
        )
        .all() as { type: string; attrs: string }[];
      conn.close();
      const outcomes = rows.map((r) => {
        const a = JSON.parse(r.attrs) as { outcome?: string; reason?: string };
        return `${r.type}:${a.outcome ?? a.reason ?? '?'}`;
      });
      expect(outcomes.sort()).toEqual(
        [
          'admin.access:allowed',
          'admin.access:bad_request',
          'admin.access:unauthenticated',
          'provider.rejected:unauthorized',
        ].sort(),
      );
      const everything = [
        databaseBytes(db).toString('latin1'),
        output,
        readFileSync(join(dir, 'checkpoints.jsonl'), 'latin1'),
      ].join('\n');
      expect(output).toContain('listening');
      for (const v of [...Object.values(c), ADMIN]) expect(everything.includes(v), v).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
