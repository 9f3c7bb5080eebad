import { existsSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type Database from 'better-sqlite3';
import type { Damage } from './damage.js';
import { SEAL_COLUMNS, sealFromRow, sealSignatureValid, type SealRow } from './seal.js';
import type { TrustedKey } from './signing-keys.js';

export interface SealCheck {
  /** Highest seq with an authentic seal (0 when none). */
  top: number;
  /** Its chain (hex), which the record scan compares with the stored chain. */
  chain: string | null;
  problems: Damage[];
  keyIds: string[];
}

/**
 * Finds the newest authentic batch seal in (afterSeq, maxSeq]: with the hash chain it signs every
 * record up to its seq, so the ones below it are not needed (one signature check, not one per
 * batch). Seals that do not verify on the way down are reported: only someone editing the file
 * writes one.
 */
export function newestSeal(
  db: Database.Database,
  ledgerId: string,
  afterSeq: number,
  maxSeq: number,
  trusted: readonly TrustedKey[],
): SealCheck {
  const keys = new Map(trusted.map((k) => [k.keyId, k] as const));
  const problems: Damage[] = [];
  const stmt = db.prepare(
    `SELECT ${SEAL_COLUMNS} FROM seals WHERE seq > ? AND seq <= ? ORDER BY seq DESC LIMIT 64`,
  );
  const unknown = new Set<string>();
  // Bounded: rows that do not verify are the attacker's, and need not all be checked.
  for (let below = maxSeq, checked = 0; checked < 10_000; checked += 64) {
    const rows = stmt.all(afterSeq, below) as SealRow[];
    if (rows.length === 0) break;
    for (const row of rows) {
      const s = sealFromRow(row, ledgerId);
      const key = keys.get(s.keyId);
      if (!key) {
        // With no trusted key at all, the checkpoints' unknown_key finding says it already.
        if (!unknown.has(s.keyId) && trusted.length > 0) {
          problems.push({
            class: 'unknown_key',
            seq: s.seq,
            detail: `the batch seal at seq ${s.seq} is signed by key ${s.keyId}, which is not trusted${trusted.length === 0 ? ' (no --public-key given)' : ''}`,
          });
        }
        unknown.add(s.keyId);
      } else if (!/^[0-9a-f]{64}$/.test(s.chain) || !sealSignatureValid(s, key.publicKey)) {
        problems.push({
          class: 'bad_signature',
          seq: s.seq,
          detail: `the batch seal at seq ${s.seq} does not verify under key ${s.keyId}`,
        });
      } else {
        return { top: s.seq, chain: s.chain, problems, keyIds: [s.keyId] };
      }
      below = s.seq - 1;
    }
  }
  return { top: 0, chain: null, problems, keyIds: [] };
}

/** Where an anchor (a key or log file) lies relative to the database it is used on. */
export function besideDatabase(path: string, dbPath: string): boolean {
  const real = (p: string): string => (existsSync(p) ? realpathSync(p) : resolve(p));
  return dirname(real(path)) === dirname(real(dbPath));
}
