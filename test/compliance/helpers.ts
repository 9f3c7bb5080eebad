import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { AuditInput } from '../../src/audit/record.js';
import {
  loadSigningKey,
  loadTrustedKey,
  type SigningKey,
  type TrustedKey,
} from '../../src/audit/signing-keys.js';
import {
  MANIFEST_FILE,
  SIGNATURE_FILE,
  manifestBytes,
  signManifest,
  type Manifest,
} from '../../src/compliance/bundle-manifest.js';
import { FakeClock, openLedger, tempDir } from '../audit/helpers.js';

export { FakeClock, tempDir };

/** A closed ledger built from scripted inputs, with its key and paths. */
export interface Scenario {
  dir: string;
  dbPath: string;
  key: SigningKey;
  trusted: TrustedKey[];
  clock: FakeClock;
  /** unix ms of the scenario's first record after genesis. */
  start: number;
}

export const fp = (n: number): string => `hmac-sha256:k1:${n.toString(16).padStart(64, '0')}`;

/**
 * Writes `script(emit)` through the real Ledger + Checkpointer (sealed every `checkpointEvery`
 * records, closed cleanly so a shutdown checkpoint seals the tail). `emit` advances the clock by
 * `stepMs` (default 1000) unless `at` is given.
 */
export function buildScenario(
  script: (
    emit: (input: Omit<AuditInput, 'time'> & { at?: number }) => void,
    clock: FakeClock,
  ) => void,
  opts: { checkpointEvery?: number; seal?: boolean; stepMs?: number; flushEvery?: number } = {},
): Scenario {
  const dir = tempDir('tw-compliance-');
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const start = clock.t + (opts.stepMs ?? 1000);
  const { ledger, checkpointer } = openLedger(dir, {
    checkpointEvery: opts.checkpointEvery ?? 50,
    clock,
  });
  let emitted = 0;
  const emit = (input: Omit<AuditInput, 'time'> & { at?: number }): void => {
    const { at, ...rest } = input;
    if (at === undefined) clock.advance(opts.stepMs ?? 1000);
    else clock.t = at;
    ledger.append({ ...rest, time: clock.t });
    // One commit per record by default: checkpoints fall every `checkpointEvery` records.
    if (++emitted % (opts.flushEvery ?? 1) === 0) ledger.flush();
  };
  script(emit, clock);
  ledger.flush();
  if (opts.seal === false) {
    // Leave the tail unsealed: close the ledger under the checkpointer's feet (simulated crash).
    ledger.close();
    checkpointer.close();
  } else {
    checkpointer.close();
    ledger.close();
  }
  return {
    dir,
    dbPath: join(dir, 'audit.db'),
    key: loadSigningKey(join(dir, 'signing.key')),
    trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    clock,
    start,
  };
}

/** Opens the scenario's database read-only. */
export function readOnly(dbPath: string): Database.Database {
  return new Database(dbPath, { readonly: true, fileMustExist: true });
}

export function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
}

/** An attacker holding the signing key: rehash every file into the manifest and re-sign it. */
export function resign(dir: string, key: SigningKey, edit: (m: Manifest) => void = () => {}): void {
  const m = readManifest(dir);
  for (const f of m.files) {
    const data = readFileSync(join(dir, f.name));
    f.bytes = data.length;
    f.sha256 = createHash('sha256').update(data).digest('hex');
  }
  edit(m);
  const bytes = manifestBytes(m);
  writeFileSync(join(dir, MANIFEST_FILE), bytes);
  writeFileSync(join(dir, SIGNATURE_FILE), signManifest(bytes, key));
}

/** Lines of a bundle's first records file. */
export function dataFile(dir: string): string {
  const name = readdirSync(dir).find((n) => n.startsWith('records-'));
  if (!name) throw new Error(`no records file in ${dir}`);
  return join(dir, name);
}

export function editLines(path: string, edit: (lines: string[]) => string[]): void {
  const text = readFileSync(path, 'utf8');
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  writeFileSync(path, `${edit(lines).join('\n')}\n`);
}
