import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import { verifyLedger } from '../../src/audit/verify.js';
import { DIST_TIMEOUT_MS, ROOT, ensureDist } from './dist.js';
import { openLedger, tempDir } from './helpers.js';

beforeAll(() => ensureDist(), DIST_TIMEOUT_MS);

const BATCH = 2000;

/** A writer that appends durable batches forever and prints each acknowledged last seq. */
function childScript(): string {
  const mod = (p: string) => pathToFileURL(join(ROOT, 'dist/audit', p)).href;
  return `
import { Ledger } from '${mod('ledger.js')}';
import { Checkpointer } from '${mod('checkpointer.js')}';
import { resolveSigningKey } from '${mod('signing-keys.js')}';
const [dbPath, logPath] = process.argv.slice(2);
const { key } = resolveSigningKey(undefined, dbPath);
const ledger = new Ledger({ path: dbPath, batchSize: ${BATCH}, flushIntervalMs: 1, maxPending: 1e6, hmacKeyIds: ['k'], signingKey: key });
const cp = new Checkpointer({ ledger, key, logPath, everyRecords: 5000, intervalMs: 200, heartbeatMs: 200 });
cp.start();
process.stdout.write('ready ' + ledger.lastSeq + '\\n');
let i = 0;
for (;;) {
  const batch = Array.from({ length: ${BATCH} }, () => ({ time: Date.now(), source: 'redis', type: 'token.written', attrs: { i: i++, pad: 'x'.repeat(300) } }));
  const committed = await ledger.appendDurable(batch);
  process.stdout.write(committed.at(-1).seq + '\\n');
}
`;
}

/** Runs the writer until it acknowledged `acks` batches, then SIGKILLs it mid-stream. */
function runAndKill(
  script: string,
  dbPath: string,
  logPath: string,
  acks: number,
): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, dbPath, logPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: number[] = [];
    let buf = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (/^\d+$/.test(line)) acked.push(Number(line));
        // Kill at a random moment inside the next batch, not right after an acknowledgement.
        if (acked.length === acks)
          setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 15));
      }
    });
    child.once('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited ${code ?? signal}: ${err}`));
      else resolve(acked);
    });
  });
}

describe('SIGKILL of a writer mid-batch', () => {
  it('loses no acknowledged record, leaves whole batches only, and verifies after restart', async () => {
    const dir = tempDir();
    const dbPath = join(dir, 'audit.db');
    const logPath = join(dir, 'checkpoints.jsonl');
    const script = join(dir, 'writer.mjs');
    writeFileSync(script, childScript());
    let lastAcked = 0;
    for (const acks of [5, 8, 3]) {
      const acked = await runAndKill(script, dbPath, logPath, acks);
      expect(acked.length).toBeGreaterThanOrEqual(acks);
      lastAcked = Math.max(lastAcked, ...acked);
      const db = new Database(dbPath, { readonly: true });
      const { max, n } = db.prepare('SELECT MAX(seq) AS max, COUNT(*) AS n FROM records').get() as {
        max: number;
        n: number;
      };
      db.close();
      expect(max).toBeGreaterThanOrEqual(lastAcked); // every acknowledged seq is there
      expect(n).toBe(max); // no gap
      expect((max - 1) % BATCH).toBe(0); // genesis + whole batches: the killed one is all or nothing
      const report = await verifyLedger({
        dbPath,
        checkpointLog: logPath,
        trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
      });
      expect(report.problems).toEqual([]);
      expect(report.records).toBe(max);
    }
    // A restart seals what the killed writer left unsealed.
    const { ledger, checkpointer } = openLedger(dir);
    checkpointer.close();
    ledger.close();
    const sealed = await verifyLedger({
      dbPath,
      checkpointLog: logPath,
      trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    });
    expect(sealed.ok).toBe(true);
    expect(sealed.unsealed).toBe(0);
  });
});
