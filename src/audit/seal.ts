import { sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import type { SigningKey } from './signing-keys.js';

/** Version of the batch seal statement. */
export const SEAL_VERSION = 1;

/**
 * Domain separation from checkpoints (`tokenwatch checkpoint v1\n`) and bundle manifests: a seal
 * signature can never be replayed as any other statement the key makes.
 */
const MESSAGE_PREFIX = `tokenwatch seal v${SEAL_VERSION}\n`;

/**
 * What a batch seal states: "records 1..seq of ledger L have chain hash H", signed by the writer
 * in the transaction that committed the batch ending at `seq`. Unlike a checkpoint it is not
 * numbered or linked and never leaves the database: its job is to make every committed row carry
 * a signature the database writer cannot make, so a row appended by hand (even with a correctly
 * recomputed chain) is `unsealed` damage, not a warning.
 */
export interface Seal {
  ledgerId: string;
  seq: number;
  /** chain(seq), lowercase hex. */
  chain: string;
  /** Signing time, unix ms (the writer's clock). */
  time: number;
  keyId: string;
  /** Ed25519 signature (RFC 8032, pure), base64. */
  sig: string;
}

/** The signed bytes: the prefix, then canonical JSON of {chain, keyId, ledgerId, seq, time}. */
export function sealMessage(s: Omit<Seal, 'sig'>): Buffer {
  return Buffer.from(
    MESSAGE_PREFIX +
      canonicalJson({
        chain: s.chain,
        keyId: s.keyId,
        ledgerId: s.ledgerId,
        seq: s.seq,
        time: s.time,
      }),
    'utf8',
  );
}

/** The raw signature over a batch head (one Ed25519 signature, ~50-75 us). */
export function signSeal(
  ledgerId: string,
  seq: number,
  chainHex: string,
  time: number,
  key: SigningKey,
): Buffer {
  return sign(
    null,
    sealMessage({ ledgerId, seq, chain: chainHex, time, keyId: key.keyId }),
    key.privateKey,
  );
}

/** True when the seal's signature verifies under `publicKey`. */
export function sealSignatureValid(s: Seal, publicKey: KeyObject): boolean {
  const sig = Buffer.from(s.sig, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, sealMessage(s), publicKey, sig);
  } catch {
    return false;
  }
}

/** A row of the `seals` table (schema v3). */
export interface SealRow {
  seq: number;
  chain: Buffer;
  time: number;
  key_id: string;
  sig: Buffer;
}

/** SELECT list matching SealRow. */
export const SEAL_COLUMNS = 'seq, chain, time, key_id, sig';

/** INSERT of one seal row, values in SEAL_COLUMNS order. */
export const INSERT_SEAL_SQL = `INSERT INTO seals (${SEAL_COLUMNS}) VALUES (?,?,?,?,?)`;

/** A row as a Seal of `ledgerId` (the table does not repeat the id). */
export function sealFromRow(row: SealRow, ledgerId: string): Seal {
  return {
    ledgerId,
    seq: Number(row.seq),
    chain: Buffer.isBuffer(row.chain) ? row.chain.toString('hex') : String(row.chain),
    time: Number(row.time),
    keyId: String(row.key_id),
    sig: Buffer.isBuffer(row.sig) ? row.sig.toString('base64') : '',
  };
}
