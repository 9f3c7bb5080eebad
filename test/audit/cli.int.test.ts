import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import type { VerifyReport } from '../../src/audit/verify.js';
import { DIST_TIMEOUT_MS, cli, ensureDist } from './dist.js';
import { appendRecords, buildLedger, openLedger, tamper, tempDir, type Built } from './helpers.js';

beforeAll(() => ensureDist(), DIST_TIMEOUT_MS);

const args = (b: Built): string[] => [
  '--db',
  b.dbPath,
  '--checkpoints',
  b.logPath,
  '--public-key',
  b.publicKeyPath,
];

describe('node dist/cli.js', () => {
  it('verify exits 0 on an intact ledger, 1 on a damaged one, 2 on bad usage', () => {
    const b = buildLedger(100, { checkpointEvery: 25 });
    const ok = cli(['verify', ...args(b)]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^OK: intact/m);

    tamper(b.dbPath, (db) => db.prepare("UPDATE records SET attrs = '{}' WHERE seq = 40").run());
    const bad = cli(['verify', ...args(b), '--json']);
    expect(bad.code).toBe(1);
    const report = JSON.parse(bad.stdout) as VerifyReport;
    expect(report.problems[0]).toMatchObject({ class: 'modified', seq: 40 });

    const usage = cli(['verify']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/verify needs --db PATH/);
  });

  it('verify splits the scan across worker threads and still names the right seq', () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir, { checkpointEvery: 5000 });
    appendRecords(ledger, clock, 30_000);
    checkpointer.close();
    ledger.close();
    const b = {
      dbPath: join(dir, 'audit.db'),
      logPath: join(dir, 'checkpoints.jsonl'),
      publicKeyPath: join(dir, 'signing.pub'),
    } as Built;
    const ok = cli(['verify', ...args(b), '--threads', '2', '--json']);
    const good = JSON.parse(ok.stdout) as VerifyReport;
    expect(good.ok).toBe(true);
    expect(good.stats.threads).toBe(2);
    expect(good.records).toBe(30_001);
    tamper(b.dbPath, (db) => {
      db.prepare('DELETE FROM records WHERE seq = 25000').run();
      db.prepare("UPDATE records SET kind = 'refresh_token' WHERE seq = 27777").run();
    });
    const bad = JSON.parse(
      cli(['verify', ...args(b), '--threads', '2', '--json']).stdout,
    ) as VerifyReport;
    expect(bad.problems.map((p) => [p.class, p.seq])).toEqual([
      ['missing', 25000],
      ['modified', 27777],
    ]);
  });

  it('keygen writes the private key 0600 and the public key 0644', () => {
    const dir = join(tempDir(), 'keys');
    const r = cli(['keygen', '--out', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^key id [0-9a-f]{16}$/m);
    expect(statSync(join(dir, 'signing.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'signing.pub')).mode & 0o777).toBe(0o644);
  });

  it('audit-hash prints what Fingerprinter.all computes, from argv or stdin', () => {
    const dir = tempDir();
    const config = join(dir, 'tw.yaml');
    writeFileSync(
      config,
      `tokens:\n  - { kind: access_token, key: 'oauth:access:{token}' }\naudit:\n  path: ${join(dir, 'a.db')}\n  hmacKeys:\n    - { id: new, key: "aaaaaaaaaaaaaaaaaaaa" }\n    - { id: old, key: "bbbbbbbbbbbbbbbbbbbb" }\n`,
    );
    const expected = new Fingerprinter([
      { id: 'new', key: Buffer.from('aaaaaaaaaaaaaaaaaaaa') },
      { id: 'old', key: Buffer.from('bbbbbbbbbbbbbbbbbbbb') },
    ])
      .all('secret-token')
      .map((f) => `${f.fingerprint}\n`)
      .join('');
    const r = cli(['audit-hash', 'secret-token', '--config', config]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(expected);
    expect(cli(['audit-hash', '-', '--config', config], 'secret-token\n').stdout).toBe(expected);
  });
});
