import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportCommand } from '../../src/cli/export.js';
import { reportCommand } from '../../src/cli/report.js';
import { verifyExportCommand } from '../../src/cli/verify-export.js';
import type { Soc2Report } from '../../src/compliance/report-types.js';
import { dataFile, editLines, tempDir } from './helpers.js';
import { DAY, T0, socScenario } from './scenario.js';
import { sink } from '../helpers/sink.js';

const period = ['--from', new Date(T0).toISOString(), '--to', new Date(T0 + DAY).toISOString()];

describe('tokenwatch export / verify-export / report', () => {
  it('exports, verifies (exit 0), then fails (exit 1) once a row is edited', async () => {
    const s = socScenario();
    const out = join(tempDir(), 'bundle');
    const e = sink();
    expect(
      await exportCommand(['--db', s.dbPath, ...period, '--format', 'csv', '--out', out], e.out),
    ).toBe(0);
    expect(e.text()).toMatch(/linked to checkpoint #\d+/);
    const pub = join(s.dir, 'signing.pub');
    const ok = sink();
    expect(await verifyExportCommand([out, '--public-key', pub], ok.out)).toBe(0);
    expect(ok.text()).toMatch(
      /^OK: every file, row and signature verifies; linked to checkpoint #\d+/m,
    );

    editLines(dataFile(out), (lines) =>
      lines.map((l, i) => (i === 2 ? l.replace('redis-0', 'redis-9') : l)),
    );
    const bad = sink();
    expect(await verifyExportCommand([out, '--public-key', pub, '--json'], bad.out)).toBe(1);
    const report = JSON.parse(bad.text()) as { ok: boolean; problems: { class: string }[] };
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.class)).toEqual(
      expect.arrayContaining(['file_hash', 'chain']),
    );
  });

  it('refuses bad usage with ERR_USAGE (exit 2)', async () => {
    const s = socScenario();
    await expect(
      exportCommand([
        '--db',
        s.dbPath,
        ...period,
        '--format',
        'xml',
        '--out',
        join(tempDir(), 'b'),
      ]),
    ).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(
      exportCommand(['--db', s.dbPath, '--from', 'yesterday', '--to', 'now', '--out', 'x']),
    ).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(verifyExportCommand([tempDir()])).rejects.toMatchObject({ code: 'ERR_USAGE' }); // no --public-key
    await expect(
      reportCommand(['--db', s.dbPath, ...period, '--format', 'pdf']),
    ).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });

  it('writes the report as HTML or JSON', async () => {
    const s = socScenario();
    const file = join(tempDir(), 'r.html');
    const err = sink();
    expect(
      await reportCommand(['--db', s.dbPath, ...period, '--out', file], sink().out, err.out),
    ).toBe(0);
    expect(err.text()).toMatch(/trusting the public key beside the database/);
    expect(readFileSync(file, 'utf8')).toMatch(/^<!doctype html>/);
    const json = sink();
    expect(
      await reportCommand(
        [
          '--db',
          s.dbPath,
          ...period,
          '--format',
          'json',
          '--public-key',
          join(s.dir, 'signing.pub'),
        ],
        json.out,
        sink().out,
      ),
    ).toBe(0);
    const r = JSON.parse(json.text()) as Soc2Report;
    expect(r.format).toBe('tokenwatch-soc2-report');
    expect(r.integrity.status).toBe('verified');
    // This ledger predates config.policy: the report says the policy is unknown, not "none".
    expect(err.text()).toMatch(/records no policy .* TTL conformance is reported as unknown/);
    expect(r.policy.source).toBe('none');
    expect(r.ttl.perKind.session).toMatchObject({ overPolicy: null, conformance: null });
  });

  it('--config judges the whole period by that file, and says so', async () => {
    const s = socScenario();
    const config = join(tempDir(), 'tokenwatch.yaml');
    writeFileSync(
      config,
      [
        'tokens:',
        "  - { kind: access_token, key: 'oauth:access:{token}', maxTtlSeconds: 3600 }",
        "  - { kind: session, key: 'session:{sid}', maxTtlSeconds: 3600 }",
        'correlate: { ttlToleranceSeconds: 0, revocationSlaSeconds: 30 }',
        '',
      ].join('\n'),
    );
    const json = sink();
    const err = sink();
    expect(
      await reportCommand(
        ['--db', s.dbPath, ...period, '--format', 'json', '--config', config],
        json.out,
        err.out,
      ),
    ).toBe(0);
    expect(err.text()).toContain(`judging the whole period by ${config}`);
    const r = JSON.parse(json.text()) as Soc2Report;
    expect(r.policy).toMatchObject({ source: 'config', inForce: [{ seq: null }] });
    expect(r.ttl.perKind.session).toMatchObject({
      policyMaxTtlSeconds: 3600,
      toleranceSeconds: 0,
      overPolicy: 1,
    });
  });
});
