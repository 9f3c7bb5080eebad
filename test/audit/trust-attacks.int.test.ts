import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, canonicalRecord, chainHash, leafHash } from '../../src/audit/canonical.js';
import type { VerifyReport } from '../../src/audit/verify.js';
import type { Soc2Report } from '../../src/compliance/report-types.js';
import { waitFor } from '../helpers/app-harness.js';
import { freePort, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { DIST_TIMEOUT_MS, ROOT, cli, ensureDist } from './dist.js';
import { tamper, tempDir } from './helpers.js';

/**
 * The five attacks of issue #14, each by someone who can write the database file only (no
 * signing key, no write access to the external checkpoint log), against a ledger written by a
 * real `tokenwatch serve` process: detected by `verify` with its class, refused at start-up
 * (exit 3), and the report of the period says "not verified" with the reason.
 */

let redis: RedisServer;
beforeAll(async () => {
  ensureDist();
  redis = await startRedis();
}, DIST_TIMEOUT_MS);
afterAll(async () => {
  await redis.stop();
});

interface Site {
  db: string;
  signingKey: string;
  publicKey: string;
  log: string;
  env: NodeJS.ProcessEnv;
}

/** A production-like layout: key from "the secret store", log on "write-once storage". */
function site(): Site {
  const dir = tempDir('tw-trust-');
  const keys = join(dir, 'secrets');
  expect(cli(['keygen', '--out', keys]).code).toBe(0);
  mkdirSync(join(dir, 'worm'));
  const s = {
    db: join(dir, 'data', 'tokenwatch.db'),
    signingKey: join(keys, 'signing.key'),
    publicKey: join(keys, 'signing.pub'),
    log: join(dir, 'worm', 'checkpoints.jsonl'),
  };
  return {
    ...s,
    env: {
      TOKENWATCH_AUDIT_PATH: s.db,
      TOKENWATCH_SIGNING_KEY: s.signingKey,
      TOKENWATCH_CHECKPOINT_LOG: s.log,
      TOKENWATCH_HMAC_KEY: 'trust-attacks-hmac-key-0123456789',
    },
  };
}

interface Running {
  child: ChildProcess;
  port: number;
  output: () => string;
  exit: Promise<number | null>;
}

async function startServe(env: NodeJS.ProcessEnv, args: string[] = []): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'serve', ...args], {
    env: {
      ...process.env,
      TOKENWATCH_REDIS_URL: redis.url,
      TOKENWATCH_PORT: String(port),
      TOKENWATCH_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, port, output: () => out, exit };
}

/** Starts serve, waits until ready, writes `tokens` tokens, then stops it with `signal`. */
async function runService(
  s: Site,
  tokens: number,
  signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM',
  args: string[] = [],
  whileUp?: () => void,
): Promise<string> {
  const startedBefore = existsSync(s.db) ? records(s, 'system.started').length : 0;
  const r = await startServe(s.env, args);
  let exited: number | null | undefined;
  void r.exit.then((c) => (exited = c));
  await waitFor(
    async () => {
      if (exited !== undefined) throw new Error(`serve exited ${exited}: ${r.output()}`);
      try {
        return (await fetch(`http://127.0.0.1:${r.port}/readyz`)).status === 200;
      } catch {
        return false;
      }
    },
    30_000,
    'readyz',
  );
  const c = redis.client();
  const prefix = Math.random().toString(36).slice(2);
  for (let i = 0; i < tokens; i++) await c.set(`oauth:access:${prefix}-${i}`, 'v', 'EX', 600);
  await waitFor(
    async () =>
      (await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text()).includes(
        `tokenwatch_token_events_total{kind="access_token",event="written"} ${tokens}`,
      ),
    15_000,
    'token records',
  );
  // The metric counts what was recorded, the ledger what was committed: a crash must come after
  // this run's system.started is in the file, else the run leaves no trace to test against.
  await waitFor(
    () => records(s, 'system.started').length > startedBefore,
    15_000,
    'system.started committed',
  );
  whileUp?.();
  r.child.kill(signal);
  const code = await r.exit;
  if (signal === 'SIGTERM') expect(code, r.output()).toBe(0);
  return r.output();
}

/** Runs serve expecting it to refuse the file: exit code and output. */
async function refusedStart(s: Site): Promise<{ code: number | null; output: string }> {
  const r = await startServe(s.env);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 30_000);
  const code = await r.exit;
  clearTimeout(timer);
  return { code, output: r.output() };
}

function verifyJson(s: Site, anchored = true): { code: number | null; report: VerifyReport } {
  const args = anchored
    ? ['verify', '--db', s.db, '--checkpoints', s.log, '--public-key', s.publicKey, '--json']
    : ['verify', '--db', s.db, '--json'];
  const r = cli(args);
  return { code: r.code, report: JSON.parse(r.stdout) as VerifyReport };
}

function reportJson(s: Site): Soc2Report {
  const from = new Date(Date.now() - 3_600_000).toISOString();
  const to = new Date(Date.now() + 60_000).toISOString();
  const r = cli([
    'report',
    '--db',
    s.db,
    '--from',
    from,
    '--to',
    to,
    '--format',
    'json',
    '--public-key',
    s.publicKey,
    '--checkpoints',
    s.log,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Soc2Report;
}

interface Row {
  seq: number;
  time: number;
  source: string;
  type: string;
  kind: string | null;
  fingerprint: string | null;
  attrs: string;
  chain: Buffer;
}

/** Appends a record with a correctly computed leaf and chain: what a DB writer can do. */
function appendForged(
  db: Database.Database,
  input: Omit<Row, 'seq' | 'chain' | 'attrs'> & {
    attrs: Record<string, unknown>;
  },
): number {
  const last = db.prepare('SELECT seq, chain FROM records ORDER BY seq DESC LIMIT 1').get() as Row;
  const seq = last.seq + 1;
  const attrs = canonicalJson(input.attrs);
  const leaf = leafHash(canonicalRecord({ ...input, seq, attrs }));
  const chain = chainHash(last.chain, leaf);
  db.prepare('INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?)').run(
    seq,
    input.time,
    input.source,
    input.type,
    input.kind,
    input.fingerprint,
    attrs,
    leaf,
    chain,
  );
  return seq;
}

function logLines(s: Site): string[] {
  return readFileSync(s.log, 'utf8').trim().split('\n');
}

function records(s: Site, type: string): { seq: number; attrs: Record<string, unknown> }[] {
  const db = new Database(s.db, { readonly: true });
  try {
    return (
      db.prepare('SELECT seq, attrs FROM records WHERE type = ? ORDER BY seq').all(type) as {
        seq: number;
        attrs: string;
      }[]
    ).map((r) => ({ seq: r.seq, attrs: JSON.parse(r.attrs) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

/** Attack 1: delete an old prefix and append a purge record pointing at a real checkpoint. */
function forgePurge(s: Site): { toSeq: number; purgeSeq: number } {
  let out = { toSeq: 0, purgeSeq: 0 };
  tamper(s.db, (db) => {
    const cp = db
      .prepare(
        "SELECT n, seq, chain, time FROM checkpoints WHERE reason = 'shutdown' ORDER BY n LIMIT 1",
      )
      .get() as { n: number; seq: number; chain: Buffer; time: number };
    const first = db.prepare('SELECT time FROM records WHERE seq = 1').get() as { time: number };
    const last = db.prepare('SELECT time FROM records WHERE seq = ?').get(cp.seq) as {
      time: number;
    };
    db.prepare('DELETE FROM records WHERE seq <= ?').run(cp.seq);
    const now = Date.now();
    const purgeSeq = appendForged(db, {
      time: now,
      source: 'system',
      type: 'audit.retention_purge',
      kind: null,
      fingerprint: null,
      attrs: {
        fromSeq: 1,
        toSeq: cp.seq,
        records: cp.seq,
        chain: cp.chain.toString('hex'),
        checkpoint: cp.n,
        checkpointTime: cp.time,
        firstTime: first.time,
        lastTime: last.time,
        retentionDays: 400,
        cutoff: now - 400 * 86_400_000,
      },
    });
    out = { toSeq: cp.seq, purgeSeq };
  });
  return out;
}

describe('trust: attacks by whoever can write the database file (real tokenwatch serve)', () => {
  it('1. a forged retention purge over a deleted prefix → forged_purge, refused at start, report not verified', async () => {
    const s = site();
    await runService(s, 3);
    await runService(s, 3);
    const { toSeq } = forgePurge(s);

    const v = verifyJson(s);
    expect(v.code).toBe(1);
    expect(v.report.anchors.anchored).toBe(true);
    expect(v.report.problems).toEqual(
      expect.arrayContaining([expect.objectContaining({ class: 'forged_purge', seq: 1, toSeq })]),
    );
    // Every reason is named: unsigned, and younger than the signed retention of 400 days.
    const details = v.report.problems.map((p) => p.detail).join('\n');
    expect(details).toMatch(/no checkpoint or batch seal signs it/);
    expect(details).toMatch(/less than the signed retention of 400 days/);

    const start = await refusedStart(s);
    expect(start.code, start.output).toBe(3);
    expect(start.output).toMatch(/refusing to start: .*forged_purge at seq \d+/);

    const integrity = reportJson(s).integrity;
    expect(integrity.verdict).toBe('not verified');
    expect(integrity.reason).toMatch(/forged_purge/);
  }, 120_000);

  it('2. restart over a forged file signs nothing; --accept-discontinuity records the break for good', async () => {
    const s = site();
    await runService(s, 3);
    await runService(s, 2);
    forgePurge(s);
    const lines = logLines(s);
    const db = new Database(s.db, { readonly: true });
    const before = db.prepare('SELECT MAX(seq) AS m FROM records').get() as { m: number };
    db.close();

    const refused = await refusedStart(s);
    expect(refused.code, refused.output).toBe(3);
    // Nothing signed, nothing written: the log and the file are exactly as the attacker left them.
    expect(logLines(s)).toEqual(lines);
    const after = new Database(s.db, { readonly: true });
    expect(after.prepare('SELECT MAX(seq) AS m FROM records').get()).toEqual(before);
    after.close();

    const out = await runService(s, 1, 'SIGTERM', ['--accept-discontinuity']);
    expect(out).toMatch(/accept-discontinuity/);
    const [d] = records(s, 'ledger.discontinuity');
    expect(d?.attrs).toMatchObject({
      class: 'forged_purge',
      acceptedBy: 'serve --accept-discontinuity',
    });
    expect(d?.seq).toBe(before.m + 1); // the first thing written

    const v = verifyJson(s);
    expect(v.code).toBe(1);
    expect(v.report.problems.map((p) => p.class)).toEqual(
      expect.arrayContaining(['discontinuity', 'forged_purge']),
    );
    expect(v.report.discontinuities).toEqual([expect.objectContaining({ found: 'forged_purge' })]);
    const integrity = reportJson(s).integrity;
    expect(integrity.verdict).toBe('not verified');
    expect(integrity.reason).toMatch(/forged_purge|discontinuity/);
    // Later restarts start normally: the break is recorded, the tail is sealed.
    await runService(s, 1);
  }, 180_000);

  it('3. a forged system.stopped after a crash does not make the restart look clean', async () => {
    const s = site();
    await runService(s, 2); // clean stop: the signed shutdown checkpoint says so
    await runService(s, 2, 'SIGKILL'); // crash
    const started = records(s, 'system.started');
    expect(started.at(-1)?.attrs.previous).toMatchObject({ cleanShutdown: true });
    let forged = 0;
    tamper(s.db, (db) => {
      forged = appendForged(db, {
        time: Date.now(),
        source: 'system',
        type: 'system.stopped',
        kind: null,
        fingerprint: null,
        attrs: { reason: 'SIGTERM' },
      });
    });

    const v = verifyJson(s);
    expect(v.code).toBe(1);
    expect(v.report.problems).toEqual([
      expect.objectContaining({ class: 'unsealed', seq: forged, toSeq: forged }),
    ]);
    const refused = await refusedStart(s);
    expect(refused.code, refused.output).toBe(3);
    expect(refused.output).toMatch(new RegExp(`unsealed at seq ${forged}`));

    await runService(s, 1, 'SIGTERM', ['--accept-discontinuity']);
    const restarted = records(s, 'system.started').at(-1);
    expect(restarted?.attrs.previous).toMatchObject({ cleanShutdown: false });
    const gap = records(s, 'keyspace.gap').at(-1);
    expect(gap?.attrs.reason).toBe('tokenwatch_crashed');
    expect(reportJson(s).integrity.verdict).toBe('not verified');
  }, 180_000);

  it('4. an appended admin.access row with a recomputed chain → unsealed damage, not a warning', async () => {
    const s = site();
    await runService(s, 3);
    let forged = 0;
    tamper(s.db, (db) => {
      forged = appendForged(db, {
        time: Date.now(),
        source: 'admin',
        type: 'admin.access',
        kind: null,
        fingerprint: null,
        attrs: { principal: 'auditor', route: '/v1/reports/soc2', allowed: true },
      });
    });
    const v = verifyJson(s);
    expect(v.code).toBe(1);
    expect(v.report.ok).toBe(false);
    expect(v.report.problems).toEqual([
      expect.objectContaining({ class: 'unsealed', seq: forged, toSeq: forged }),
    ]);
    const refused = await refusedStart(s);
    expect(refused.code, refused.output).toBe(3);
    expect(refused.output).toMatch(new RegExp(`unsealed at seq ${forged}`));
    const integrity = reportJson(s).integrity;
    expect(integrity.verdict).toBe('not verified');
    expect(integrity.reason).toMatch(/unsealed/);
  }, 120_000);

  it('5. default layout: 0700 directory, 0600 files, verify says anchored: false, a readable key is refused', async () => {
    const dir = tempDir('tw-trust-');
    const db = join(dir, 'data', 'tokenwatch.db');
    const s: Site = {
      db,
      signingKey: join(dir, 'data', 'signing.key'),
      publicKey: join(dir, 'data', 'signing.pub'),
      log: join(dir, 'data', 'checkpoints.jsonl'),
      env: { TOKENWATCH_AUDIT_PATH: db, TOKENWATCH_HMAC_KEY: '' },
    };
    const modes: Record<string, number> = {};
    const mode = (p: string): number => statSync(p).mode & 0o777;
    const out = await runService(s, 2, 'SIGTERM', [], () => {
      modes.dir = mode(join(dir, 'data'));
      for (const f of [
        'tokenwatch.db',
        'tokenwatch.db-wal',
        'tokenwatch.db-shm',
        'signing.key',
        'hmac.key',
      ])
        modes[f] = mode(join(dir, 'data', f));
    });
    expect(modes).toEqual({
      dir: 0o700,
      'tokenwatch.db': 0o600,
      'tokenwatch.db-wal': 0o600,
      'tokenwatch.db-shm': 0o600,
      'signing.key': 0o600,
      'hmac.key': 0o600,
    });
    // The first start says where keys and the log belong.
    expect(out).toMatch(/secret store/);
    expect(out).toMatch(/write-once/);

    const v = verifyJson(s, false);
    expect(v.code).toBe(0);
    expect(v.report.anchors).toMatchObject({
      anchored: false,
      checkpointLog: { path: s.log, besideDatabase: true },
    });
    expect(v.report.anchors.publicKeys).toEqual([
      expect.objectContaining({ source: s.publicKey, besideDatabase: true }),
    ]);
    expect(v.report.warnings[0]).toMatch(/^anchored: false/);
    const text = cli(['verify', '--db', s.db]).stdout;
    expect(text).toMatch(/anchored: false/);
    const report = cli([
      'report',
      '--db',
      s.db,
      '--format',
      'json',
      '--from',
      new Date(Date.now() - 3_600_000).toISOString(),
      '--to',
      new Date(Date.now() + 60_000).toISOString(),
    ]);
    expect((JSON.parse(report.stdout) as Soc2Report).integrity.anchored).toBe(false);

    chmodSync(s.signingKey, 0o644);
    const refused = await refusedStart(s);
    expect(refused.code).toBe(2);
    expect(refused.output).toMatch(/signing key .*mode 0644.*refusing/);
    expect(existsSync(s.db)).toBe(true);
  }, 120_000);
});
