import {
  copyFileSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningKeyPem, loadTrustedKey } from '../../src/audit/signing-keys.js';
import { FINGERPRINT_RE } from '../../src/audit/fingerprint.js';
import { exportBundle } from '../../src/compliance/export-bundle.js';
import type { ExportFormat } from '../../src/compliance/row-codec.js';
import { verifyExport, type VerifyExportReport } from '../../src/compliance/verify-export.js';
import {
  buildScenario,
  dataFile,
  editLines,
  fp,
  readManifest,
  readOnly,
  resign,
  tempDir,
  type Scenario,
} from './helpers.js';
import { DAY, T0, socScenario } from './scenario.js';
import { LedgerStore } from '../../src/audit/store/ledger-store.js';

async function exportTo(
  s: Scenario,
  format: ExportFormat,
  over: { from?: number; to?: number } = {},
): Promise<string> {
  const out = join(tempDir('tw-bundle-'), 'bundle');
  const db = readOnly(s.dbPath);
  try {
    await exportBundle({
      store: new LedgerStore(db),
      from: over.from ?? T0,
      to: over.to ?? T0 + DAY,
      format,
      outDir: out,
      key: s.key,
      rowsPerFile: 20,
    });
  } finally {
    db.close();
  }
  return out;
}

interface OcsfEvent {
  activity_id: number;
  class_uid: number;
  type_uid: number;
  metadata: { product: { name: string }; version: string; event_code: string };
  resources?: { uid?: string }[];
  [k: string]: unknown;
}

const classes = (r: VerifyExportReport): string[] =>
  [...new Set(r.problems.map((p) => p.class))].sort();

describe('evidence bundles', () => {
  it.each(['jsonl', 'csv', 'ocsf'] as const)(
    'a %s bundle verifies on its own and links to a signed checkpoint',
    async (format) => {
      const s = socScenario();
      const out = await exportTo(s, format);
      const m = readManifest(out);
      expect(m.range).toMatchObject({ firstSeq: 1, timeOutliers: 0 }); // genesis is at T0 too
      expect(m.files.filter((f) => f.role === 'records').length).toBeGreaterThan(1); // 20 rows per file
      expect(m.link?.sealedBy.seq).toBeGreaterThanOrEqual(m.range!.lastSeq);
      const r = verifyExport(out, s.trusted);
      expect(r.problems).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.rows).toBe(m.range!.records);
      expect(r.sealedBy?.n).toBe(m.link?.sealedBy.n);
    },
  );

  it('exports a window in the middle: anchored at chain(a-1), tail leaves up to the next checkpoint', async () => {
    const s = socScenario({ checkpointEvery: 25 });
    const out = await exportTo(s, 'jsonl', { from: T0 + 10 * 60_000, to: T0 + 20 * 60_000 });
    const m = readManifest(out);
    expect(m.link?.anchor.source).toBe('record');
    expect(m.link!.tail.toSeq).toBeGreaterThan(m.range!.lastSeq);
    expect(verifyExport(out, s.trusted).ok).toBe(true);
  });

  it('an empty window gives a signed bundle with no rows', async () => {
    const s = socScenario();
    const out = await exportTo(s, 'csv', { from: T0 + 5 * DAY, to: T0 + 6 * DAY });
    expect(readManifest(out)).toMatchObject({ range: null, link: null, files: [] });
    expect(verifyExport(out, s.trusted).ok).toBe(true);
  });

  describe('tampering', () => {
    it('an edited row breaks the file hash, and the chain even when the manifest is re-signed', async () => {
      const s = socScenario();
      const out = await exportTo(s, 'jsonl');
      editLines(dataFile(out), (lines) =>
        lines.map((l, i) => (i === 3 ? l.replace('"redis-0"', '"redis-9"') : l)),
      );
      expect(classes(verifyExport(out, s.trusted))).toEqual(['chain', 'file_hash']);
      resign(out, s.key); // an insider with the signing key fixes hashes and signature
      const r = verifyExport(out, s.trusted);
      expect(classes(r)).toEqual(['chain']);
      expect(r.sealedBy).toBeNull();
    });

    it.each(['csv', 'ocsf'] as const)(
      'an edited %s field that the canonical values determine is a row error',
      async (format) => {
        const s = socScenario();
        const out = await exportTo(s, format);
        editLines(dataFile(out), (lines) =>
          lines.map((l, i) =>
            i === 4
              ? format === 'csv'
                ? l.replace('"token.written"', '"token.deleted"')
                : l.replace('"severity_id":1', '"severity_id":5')
              : l,
          ),
        );
        resign(out, s.key);
        const r = verifyExport(out, s.trusted);
        expect(r.ok).toBe(false);
        expect(classes(r)).toContain(format === 'csv' ? 'chain' : 'row');
      },
    );

    it('a dropped row', async () => {
      const s = socScenario();
      const out = await exportTo(s, 'csv');
      editLines(dataFile(out), (lines) => lines.filter((_, i) => i !== 5));
      resign(out, s.key, (m) => {
        m.files[0]!.rows -= 1;
        m.range!.records -= 1;
      });
      const r = verifyExport(out, s.trusted);
      expect(classes(r)).toEqual(expect.arrayContaining(['chain', 'seq']));
    });

    it('an added row', async () => {
      const s = socScenario();
      const out = await exportTo(s, 'jsonl');
      editLines(dataFile(out), (lines) => [...lines.slice(0, 3), lines[2]!, ...lines.slice(3)]);
      const r = verifyExport(out, s.trusted);
      expect(classes(r)).toEqual(expect.arrayContaining(['chain', 'seq', 'file_hash']));
    });

    it('reordered rows', async () => {
      const s = socScenario();
      const out = await exportTo(s, 'ocsf');
      editLines(dataFile(out), (lines) => {
        const copy = [...lines];
        [copy[6], copy[7]] = [copy[7]!, copy[6]!];
        return copy;
      });
      resign(out, s.key);
      expect(classes(verifyExport(out, s.trusted))).toEqual(['chain', 'seq']);
    });

    it('a swapped file: another bundle’s data file, or two files exchanged', async () => {
      const s = socScenario();
      const a = await exportTo(s, 'jsonl');
      const other = await exportTo(socScenario(), 'jsonl');
      copyFileSync(dataFile(other), dataFile(a));
      expect(classes(verifyExport(a, s.trusted))).toEqual(
        expect.arrayContaining(['chain', 'file_hash']),
      );

      const b = await exportTo(s, 'jsonl');
      const [f1, f2] = readManifest(b).files.filter((f) => f.role === 'records');
      renameSync(join(b, f1!.name), join(b, 'tmp'));
      renameSync(join(b, f2!.name), join(b, f1!.name));
      renameSync(join(b, 'tmp'), join(b, f2!.name));
      resign(b, s.key);
      expect(classes(verifyExport(b, s.trusted))).toEqual(expect.arrayContaining(['chain', 'seq']));
    });

    it('a forged manifest: altered without the key, or signed by another key', async () => {
      const s = socScenario();
      const out = await exportTo(s, 'jsonl');
      const path = join(out, 'manifest.json');
      writeFileSync(
        path,
        readFileSync(path, 'utf8').replace(/"timeOutliers": 0/, '"timeOutliers": 1'),
      );
      expect(classes(verifyExport(out, s.trusted))).toEqual(['bad_signature', 'manifest']);

      const out2 = await exportTo(s, 'jsonl');
      const dir = tempDir();
      const pem = generateSigningKeyPem();
      writeFileSync(join(dir, 'k.pem'), pem.privatePem);
      writeFileSync(join(dir, 'k.pub'), pem.publicPem);
      const { loadSigningKey } = await import('../../src/audit/signing-keys.js');
      const mallory = loadSigningKey(join(dir, 'k.pem'));
      resign(out2, mallory, (m) => {
        m.signingKeyId = mallory.keyId;
      });
      expect(classes(verifyExport(out2, s.trusted))).toEqual(['unknown_key']);
      // Trusting Mallory's key does not help: the checkpoints are still the ledger's.
      const withMallory = verifyExport(out2, [loadTrustedKey(join(dir, 'k.pub'))]);
      expect(classes(withMallory)).toContain('unknown_key');
    });

    it('a dropped tail leaf, an unexpected file, a missing file, a missing key', async () => {
      const s = socScenario({ checkpointEvery: 25 });
      const out = await exportTo(s, 'jsonl', { from: T0, to: T0 + 10 * 60_000 });
      editLines(join(out, 'tail-leaves.txt'), (lines) => lines.slice(1));
      writeFileSync(join(out, 'notes.txt'), 'hello');
      rmSync(join(out, 'checkpoints.jsonl'));
      const r = verifyExport(out, s.trusted);
      expect(classes(r)).toEqual(
        expect.arrayContaining(['chain', 'file_hash', 'file_missing', 'file_unexpected']),
      );
      expect(verifyExport(await exportTo(s, 'csv'), []).problems[0]?.class).toBe('unknown_key');
    });
  });

  it('refuses an unsealed range unless the caller can seal it', async () => {
    const s = buildScenario(
      (emit) => {
        for (let i = 0; i < 7; i++)
          emit({
            source: 'redis',
            type: 'token.written',
            kind: 'access_token',
            fingerprint: fp(i),
            attrs: { node: 'redis-0' },
          });
      },
      { checkpointEvery: 5, seal: false },
    );
    const db = readOnly(s.dbPath);
    try {
      await expect(
        exportBundle({
          store: new LedgerStore(db),
          from: T0,
          to: T0 + DAY,
          format: 'jsonl',
          outDir: join(tempDir(), 'b'),
          key: s.key,
        }),
      ).rejects.toMatchObject({ code: 'ERR_EXPORT_UNSEALED', status: 409 });
    } finally {
      db.close();
    }
  });

  it('refuses to export a damaged ledger', async () => {
    const s = socScenario();
    const { tamper } = await import('../audit/helpers.js');
    tamper(s.dbPath, (db) => db.prepare("UPDATE records SET attrs = '{}' WHERE seq = 5").run());
    await expect(exportTo(s, 'jsonl')).rejects.toMatchObject({ code: 'ERR_LEDGER_INTEGRITY' });
    expect(readdirSync(tempDir()).length).toBe(0);
  });

  it('OCSF events carry the required base fields, a computed type_uid and fingerprints only', async () => {
    const s = socScenario();
    const out = await exportTo(s, 'ocsf');
    const events = readManifest(out)
      .files.filter((f) => f.role === 'records')
      .flatMap((f) => readFileSync(join(out, f.name), 'utf8').trim().split('\n'))
      .map((l) => JSON.parse(l) as OcsfEvent);
    const byType = new Map<string, OcsfEvent>();
    for (const e of events) {
      for (const k of [
        'activity_id',
        'category_uid',
        'class_uid',
        'type_uid',
        'severity_id',
        'time',
        'metadata',
      ]) {
        expect(e, k).toHaveProperty(k);
      }
      expect(e.type_uid).toBe(e.class_uid * 100 + e.activity_id);
      expect(e.metadata.product.name).toBe('tokenwatch');
      expect(e.metadata.version).toBe('1.4.0');
      for (const r of (e.resources ?? []) as { uid?: string }[])
        if (r.uid) expect(r.uid).toMatch(FINGERPRINT_RE);
      byType.set(e.metadata.event_code, e);
    }
    expect(byType.get('provider.token_revoked')).toMatchObject({
      class_uid: 3002,
      activity_id: 99,
      auth_protocol_id: 6,
      user: { uid: 'alice' },
    });
    expect(byType.get('token.written')).toMatchObject({
      class_uid: 6003,
      activity_id: 1,
      type_uid: 600301,
    });
    expect(byType.get('token.evicted')).toMatchObject({ class_uid: 6003, activity_id: 4 });
    expect(byType.get('finding.churn_spike')).toMatchObject({
      class_uid: 2004,
      activity_id: 3,
      status_id: 4,
    });
    expect(byType.get('finding.unattributed_token')).toMatchObject({
      class_uid: 2004,
      activity_id: 1,
      severity_id: 3,
      finding_info: { uid: 'ua-1' },
    });
    expect(byType.get('system.started')).toMatchObject({ class_uid: 6002, activity_id: 3 });
    expect(byType.get('keyspace.gap')).toMatchObject({ class_uid: 1008, activity_id: 99 });
  });
});
