import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import { SCHEMA_VERSION } from '../../src/audit/schema.js';
import type { VerifyReport } from '../../src/audit/verify.js';
import { auditHash } from '../../src/cli/audit-hash.js';
import { keygen } from '../../src/cli/keygen.js';
import { verify } from '../../src/cli/verify.js';
import { buildLedger, tamper, tempDir } from './helpers.js';
import { sink } from '../helpers/sink.js';

describe('tokenwatch verify', () => {
  it('exits 0 with a summary on an intact ledger', async () => {
    const b = buildLedger(60, { checkpointEvery: 20 });
    const s = sink();
    const code = await verify(
      ['--db', b.dbPath, '--checkpoints', b.logPath, '--public-key', b.publicKeyPath],
      s.out,
    );
    expect(code).toBe(0);
    expect(s.text()).toMatch(
      new RegExp(`^ledger [0-9a-f-]{36} \\(schema v${SCHEMA_VERSION}\\)$`, 'm'),
    );
    expect(s.text()).toMatch(/^records: 61 \(seq 1\.\.61\)$/m);
    expect(s.text()).toMatch(/^time: \d{4}-.*Z \.\. \d{4}-.*Z$/m);
    expect(s.text()).toMatch(
      /^checkpoints: \d+ in the database, \d+ in the log; last #\d+ at seq 61/m,
    );
    expect(s.text()).toMatch(/^OK: intact \(61 records in/m);
  });

  it('exits 1 naming the class and the first bad seq; --json carries the same', async () => {
    const b = buildLedger(60, { checkpointEvery: 20 });
    tamper(b.dbPath, (db) => db.prepare('DELETE FROM records WHERE seq = 30').run());
    const s = sink();
    expect(
      await verify(
        ['--db', b.dbPath, '--checkpoints', b.logPath, '--public-key', b.publicKeyPath],
        s.out,
      ),
    ).toBe(1);
    expect(s.text()).toMatch(/^FAILED: missing at seq 30: record 30 is missing \(seq gap\)$/m);
    const j = sink();
    expect(
      await verify(
        ['--db', b.dbPath, '--checkpoints', b.logPath, '--public-key', b.publicKeyPath, '--json'],
        j.out,
      ),
    ).toBe(1);
    const report = JSON.parse(j.text()) as VerifyReport;
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatchObject({ class: 'missing', seq: 30 });
    expect(report.records).toBe(60);
  });

  it('uses the log and public key beside the database when none are given, and says so', async () => {
    const b = buildLedger(10);
    const j = sink();
    expect(await verify(['--db', b.dbPath, '--json'], j.out)).toBe(0);
    const report = JSON.parse(j.text()) as VerifyReport;
    expect(report.checkpoints.log).toBeGreaterThan(0);
    expect(report.warnings.join('\n')).toMatch(
      /beside the database.*--checkpoints[\s\S]*--public-key/,
    );
  });

  it('usage errors are typed (exit 2 in the CLI)', async () => {
    await expect(verify([], sink().out)).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(verify(['--db', 'x', '--threads', '0'], sink().out)).rejects.toMatchObject({
      code: 'ERR_USAGE',
    });
  });
});

describe('tokenwatch keygen', () => {
  it('writes the pair with the right modes and prints the key id', async () => {
    const dir = join(tempDir(), 'k');
    const s = sink();
    expect(await keygen(['--out', dir], s.out)).toBe(0);
    expect(s.text()).toMatch(/^key id [0-9a-f]{16}$/m);
    expect(statSync(join(dir, 'signing.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'signing.pub')).mode & 0o777).toBe(0o644);
    await expect(keygen(['--out', dir], sink().out)).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });
});

describe('tokenwatch audit-hash', () => {
  function config(dir: string, extra = ''): string {
    const path = join(dir, 'tokenwatch.yaml');
    writeFileSync(
      path,
      `tokens:\n  - kind: access_token\n    key: 'oauth:access:{token}'\naudit:\n  path: ${join(dir, 'audit.db')}\n${extra}`,
    );
    return path;
  }

  it('prints the fingerprint under every configured key id, the writing key first', async () => {
    const dir = tempDir();
    const path = config(
      dir,
      '  hmacKeys:\n    - { id: k2026, key: "0123456789abcdef0123" }\n    - { id: k2025, key: "fedcba9876543210fedc" }\n',
    );
    const s = sink();
    expect(await auditHash(['tok-123', '--config', path], s.out)).toBe(0);
    const expected = new Fingerprinter([
      { id: 'k2026', key: Buffer.from('0123456789abcdef0123') },
      { id: 'k2025', key: Buffer.from('fedcba9876543210fedc') },
    ]).all('tok-123');
    expect(s.text()).toBe(expected.map((f) => `${f.fingerprint}\n`).join(''));
    const fromStdin = sink();
    await auditHash(['-', '--config', path], fromStdin.out, () => 'tok-123\n');
    expect(fromStdin.text()).toBe(s.text());
  });

  it('refuses to invent a key when none is configured or generated', async () => {
    const dir = tempDir();
    await expect(auditHash(['x', '--config', config(dir)], sink().out)).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
    });
    await expect(auditHash([], sink().out)).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });
});
