import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger } from '../audit/ledger.js';
import { signSeal } from '../audit/seal.js';
import { keyIdOf } from '../audit/signing-keys.js';
import { appendBenchRecords, ledgerCeilings } from './ledger-ceilings.js';
import { round } from './stats.js';

/**
 * `node dist/bench/seal-ab.js [RECORDS] [ROUNDS]`: the cost of batch seals (issue #14) in
 * isolation: the Ed25519 signature alone, then scenario 6's append loop without and with a
 * signing key, alternating (and alternating which goes first), so both see the same load.
 */
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const key = { keyId: keyIdOf(publicKey), privateKey, publicKey };

const signs = 5000;
const t0 = performance.now();
for (let i = 0; i < signs; i++) signSeal('bench', i, 'ab'.repeat(32), Date.now(), key);
const signUs = ((performance.now() - t0) * 1000) / signs;

async function append(records: number, sealed: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-seal-ab-'));
  const ledger = new Ledger({
    path: join(dir, 'audit.db'),
    batchSize: 1000,
    flushIntervalMs: 25,
    maxPending: records + 10,
    hmacKeyIds: ['k1'],
    ...(sealed ? { signingKey: key } : {}),
  });
  const perSec = records / (await appendBenchRecords(ledger, records));
  ledger.close();
  rmSync(dir, { recursive: true, force: true });
  return round(perSec);
}

const records = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 2);
const runs: { sealed: boolean; perSec: number; insertOnlyPerSec: number; ratio: number }[] = [];
// The order alternates too: the second run of a pair inherits the first one's page cache and WAL.
// Each run is followed by scenario 6's INSERT-only ceiling, so its ratio compares like with like.
for (let r = 0; r < rounds; r++) {
  for (const sealed of r % 2 === 0 ? [false, true] : [true, false]) {
    const perSec = await append(records, sealed);
    const insertOnlyPerSec = ledgerCeilings(records, 1000).insertPerSec;
    runs.push({ sealed, perSec, insertOnlyPerSec, ratio: round(perSec / insertOnlyPerSec, 2) });
  }
}
process.stdout.write(`${JSON.stringify({ signUs: round(signUs), records, runs })}\n`);
