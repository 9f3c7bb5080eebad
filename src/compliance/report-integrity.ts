import type Database from 'better-sqlite3';
import { canonicalRecord, chainHashHex, leafHashHex } from '../audit/canonical.js';
import { checkpointSignatureValid, type Checkpoint } from '../audit/checkpoint.js';
import type { TrustedKey } from '../audit/signing-keys.js';
import { isTokenwatchError } from '../errors.js';
import {
  chainAnchor,
  checkpointsBetween,
  recordPages,
  sealingCheckpoint,
  yieldToLoop,
  type SeqRange,
} from './ledger-range.js';
import type { CheckpointRef, IntegritySection } from './report-types.js';

const LISTED = 20;

/**
 * Verifies the report's records the way verify-export verifies a bundle, on the database: each
 * record re-hashed against its stored leaf and chain, the chain recomputed from the anchor at
 * firstSeq-1 up to the first checkpoint at or after lastSeq, and every checkpoint from the
 * anchor to that one checked against the trusted keys and linked by `prev`.
 */
export async function checkRange(
  db: Database.Database,
  range: SeqRange | null,
  ledgerId: string,
  trusted: readonly TrustedKey[],
): Promise<IntegritySection> {
  const problems: string[] = [];
  if (!range) {
    return {
      status: 'empty',
      recordsChecked: 0,
      anchor: null,
      sealedBy: null,
      checkpointCount: 0,
      checkpoints: [],
      keyIds: [],
      problems,
    };
  }
  let anchor: IntegritySection['anchor'] = null;
  try {
    anchor = chainAnchor(db, range.firstSeq);
  } catch (err) {
    problems.push(isTokenwatchError(err) ? err.message : String(err));
  }
  const sealed = sealingCheckpoint(db, range.lastSeq, ledgerId);
  const keys = new Map(trusted.map((k) => [k.keyId, k] as const));
  const verdict = (c: Checkpoint): boolean | null => {
    const k = keys.get(c.keyId);
    return k ? checkpointSignatureValid(c, k.publicKey) : null;
  };

  const bySeq = new Map<number, string>();
  const refs: CheckpointRef[] = []; // the first LISTED ...
  const last: CheckpointRef[] = []; // ... and the last LISTED
  let count = 0;
  let prev: Checkpoint | undefined;
  const keyIds = new Set<string>();
  if (sealed) {
    for (const c of checkpointsBetween(db, range.firstSeq - 1, sealed.n, ledgerId)) {
      const ok = verdict(c);
      keyIds.add(c.keyId);
      if (ok === false)
        problems.push(`checkpoint #${c.n} (seq ${c.seq}) does not verify under key ${c.keyId}`);
      if (ok === null)
        problems.push(`checkpoint #${c.n} is signed by key ${c.keyId}, which is not trusted`);
      if (prev && (c.n !== prev.n + 1 || c.prev !== prev.sig))
        problems.push(`checkpoint #${c.n} does not link to #${prev.n}`);
      prev = c;
      if (ok) bySeq.set(c.seq, c.chain);
      count += 1;
      const ref = toRef(c, ok);
      if (refs.length < LISTED) refs.push(ref);
      else {
        last.push(ref);
        if (last.length > LISTED) last.shift();
      }
    }
  }

  let checked = 0;
  if (anchor) {
    let chain = anchor.chain;
    let expected = range.firstSeq;
    const end = sealed?.seq ?? range.lastSeq;
    outer: for (const page of recordPages(db, range.firstSeq, end)) {
      for (const r of page) {
        if (r.seq !== expected) {
          problems.push(`record ${expected} is missing (next is ${r.seq})`);
          break outer;
        }
        expected += 1;
        const leaf = leafHashHex(canonicalRecord(r));
        if (leaf !== r.leaf) problems.push(`record ${r.seq} does not hash to its stored leaf`);
        chain = chainHashHex(chain, leaf);
        if (chain !== r.chain) {
          problems.push(`record ${r.seq}: stored chain differs from the recomputed one`);
          break outer;
        }
        const signed = bySeq.get(r.seq);
        if (signed !== undefined && signed !== chain)
          problems.push(`the chain at seq ${r.seq} differs from the signed checkpoint`);
        if (r.seq <= range.lastSeq) checked += 1;
        if (problems.length > 20) break outer;
      }
      await yieldToLoop();
    }
    if (problems.length === 0 && expected !== end + 1)
      problems.push(`the ledger ends at seq ${expected - 1}, before seq ${end}`);
    if (sealed && problems.length === 0 && chain !== sealed.chain)
      problems.push(`the chain does not reach checkpoint #${sealed.n}`);
  }

  const sealedRef = sealed ? toRef(sealed, verdict(sealed)) : null;
  return {
    status: problems.length > 0 ? 'failed' : sealed ? 'verified' : 'unsealed',
    recordsChecked: checked,
    anchor,
    sealedBy: sealedRef,
    checkpointCount: count,
    checkpoints: [...refs, ...last],
    keyIds: [...keyIds],
    problems,
  };
}

function toRef(c: Checkpoint, valid: boolean | null): CheckpointRef {
  return {
    n: c.n,
    seq: c.seq,
    time: c.time,
    reason: c.reason,
    keyId: c.keyId,
    chain: c.chain,
    signature: c.sig,
    signatureValid: valid,
  };
}
