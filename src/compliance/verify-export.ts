import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { readCheckpointLog } from '../audit/checkpoint-log.js';
import { checkpointSignatureValid, parseCheckpoint, type Checkpoint } from '../audit/checkpoint.js';
import type { TrustedKey } from '../audit/signing-keys.js';
import { ChainWalk } from './bundle-chain-walk.js';
import {
  MANIFEST_FILE,
  SIGNATURE_FILE,
  manifestSignatureValid,
  parseManifest,
  type Manifest,
  type ManifestFile,
} from './bundle-manifest.js';
import { scanLines } from './line-scan.js';
import { codecFor } from './row-codec.js';

/**
 * What can be wrong with a bundle:
 * - `manifest`: missing, unreadable, or stating something the files contradict (counts, range);
 * - `bad_signature` / `unknown_key`: manifest.sig or a checkpoint does not verify, or is signed
 *   by a key the verifier was not given;
 * - `file_missing` / `file_unexpected` / `file_hash`: a listed file is absent, an unlisted one
 *   present, or a file's bytes differ from the SHA-256 the manifest states;
 * - `row`: a row that is not one the exporter writes (edited fields, broken syntax);
 * - `seq`: rows out of order, repeated, missing or extra;
 * - `chain`: the recomputed hash chain does not reach a signed checkpoint (an edited, dropped,
 *   added or reordered row, or a range that does not link);
 * - `checkpoint`: checkpoints that do not link to each other or disagree with the manifest;
 * - `discontinuity`: the range holds a `ledger.discontinuity` record: the service was started
 *   with `--accept-discontinuity` over a ledger that failed its start-up check, so what came
 *   before that record is not evidence, whatever the chain says (as `tokenwatch verify` reports).
 */
export type BundleProblemClass =
  | 'manifest'
  | 'bad_signature'
  | 'unknown_key'
  | 'file_missing'
  | 'file_unexpected'
  | 'file_hash'
  | 'row'
  | 'seq'
  | 'chain'
  | 'checkpoint'
  | 'discontinuity';

export interface BundleProblem {
  class: BundleProblemClass;
  detail: string;
  file?: string;
  line?: number;
  seq?: number;
}

/** The result of `tokenwatch verify-export`: `ok` when there is no problem at all. */
export interface VerifyExportReport {
  ok: boolean;
  /** In words: only an intact bundle is `verified`; otherwise `reason` names the first problem. */
  verdict: 'verified' | 'not verified';
  reason: string | null;
  /**
   * True when the verdict rests on anchors outside the bundle: a public key not shipped inside
   * it, and an external checkpoint log holding the sealing checkpoint.
   */
  anchored: boolean;
  anchors: string[];
  dir: string;
  ledgerId: string | null;
  query: Manifest['query'] | null;
  range: Manifest['range'];
  /** Data rows read and re-hashed. */
  rows: number;
  /** The checkpoint the range links to, when the link verified. */
  sealedBy: { n: number; seq: number; keyId: string; time: number } | null;
  checkpoints: number;
  problems: BundleProblem[];
  /** Problems beyond the ones listed. */
  moreProblems: number;
}

const MAX_PROBLEMS = 200;

/**
 * Verifies an evidence bundle on its own, with nothing but its files and the trusted public
 * key(s): the manifest signature, every file's SHA-256, every row re-encoded from the canonical
 * values it carries, the seq order, and the hash chain from the anchor through the data and the
 * tail leaves up to the sealing checkpoint, whose Ed25519 signature is checked. Reads each file
 * once, streaming.
 */
export function verifyExport(
  dir: string,
  trusted: readonly TrustedKey[],
  checkpointLog?: string,
): VerifyExportReport {
  const problems: BundleProblem[] = [];
  const inBundle = (p: string): boolean =>
    existsSync(p) && dirname(realpathSync(p)) === resolve(realpathSync(dir));
  // A file in a directory that holds the bundle (the default layout exports into
  // <data>/exports/<id>, beside signing.pub and checkpoints.jsonl): whoever could write the
  // ledger's directory could have written it too.
  const aboveBundle = (p: string): boolean => {
    if (!existsSync(p)) return false;
    const home = dirname(realpathSync(p));
    const b = resolve(realpathSync(dir));
    return b === home || b.startsWith(`${home}${sep}`);
  };
  const note = (p: string): string =>
    inBundle(p)
      ? ' (inside the bundle: not independent of it)'
      : aboveBundle(p)
        ? " (in a directory that holds the bundle, e.g. the ledger's data directory: not independent of it)"
        : '';
  const anchors: string[] = trusted.map(
    (k) => `public key ${k.keyId} from ${k.source}${note(k.source)}`,
  );
  anchors.push(
    checkpointLog === undefined
      ? 'no external checkpoint log: the sealing checkpoint is checked against the bundle only'
      : `checkpoint log ${checkpointLog}${note(checkpointLog)}`,
  );
  let anchored =
    trusted.length > 0 &&
    checkpointLog !== undefined &&
    !aboveBundle(checkpointLog) &&
    !trusted.some((k) => aboveBundle(k.source));
  let more = 0;
  const report = (p: BundleProblem): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
    else more += 1;
  };
  const result = (
    m: Manifest | null,
    extra: Partial<VerifyExportReport> = {},
  ): VerifyExportReport => ({
    ok: problems.length === 0 && more === 0,
    verdict: problems.length === 0 && more === 0 ? 'verified' : 'not verified',
    reason: problems[0] ? `${problems[0].class}: ${problems[0].detail}` : null,
    anchored,
    anchors,
    dir,
    ledgerId: m?.ledgerId ?? null,
    query: m?.query ?? null,
    range: m?.range ?? null,
    rows: 0,
    sealedBy: null,
    checkpoints: 0,
    ...extra,
    problems,
    moreProblems: more,
  });

  const manifestPath = join(dir, MANIFEST_FILE);
  if (!existsSync(manifestPath)) {
    report({ class: 'manifest', detail: `${MANIFEST_FILE} is missing` });
    return result(null);
  }
  const bytes = readFileSync(manifestPath);
  const parsed = parseManifest(bytes);
  if (typeof parsed === 'string') {
    report({ class: 'manifest', file: MANIFEST_FILE, detail: parsed });
    return result(null);
  }
  const m = parsed;
  const keys = new Map(trusted.map((k) => [k.keyId, k] as const));

  // 1. The signature over the manifest (and through its hashes, over every file).
  const sigPath = join(dir, SIGNATURE_FILE);
  const key = keys.get(m.signingKeyId);
  if (!existsSync(sigPath)) {
    report({ class: 'file_missing', file: SIGNATURE_FILE, detail: `${SIGNATURE_FILE} is missing` });
  } else if (!key) {
    report({
      class: 'unknown_key',
      file: SIGNATURE_FILE,
      detail: `the manifest is signed by key ${m.signingKeyId}, which is not trusted${trusted.length === 0 ? ' (no --public-key given)' : ''}`,
    });
  } else if (!manifestSignatureValid(bytes, readFileSync(sigPath, 'utf8'), key.publicKey)) {
    report({
      class: 'bad_signature',
      file: SIGNATURE_FILE,
      detail: 'manifest.sig does not verify: the manifest was altered or signed by another key',
    });
  }

  // 2. Exactly the listed files.
  const listed = new Set([MANIFEST_FILE, SIGNATURE_FILE, ...m.files.map((f) => f.name)]);
  for (const name of readdirSync(dir)) {
    if (!listed.has(name))
      report({
        class: 'file_unexpected',
        file: name,
        detail: `${name} is not listed in the manifest`,
      });
  }
  const present = (f: ManifestFile): boolean => {
    if (existsSync(join(dir, f.name))) return true;
    report({
      class: 'file_missing',
      file: f.name,
      detail: `${f.name} is listed in the manifest but missing`,
    });
    return false;
  };
  const checkFile = (f: ManifestFile, s: { bytes: number; sha256: string }, rows: number): void => {
    if (s.sha256 !== f.sha256 || s.bytes !== f.bytes) {
      report({
        class: 'file_hash',
        file: f.name,
        detail: `${f.name}: SHA-256 ${s.sha256} (${s.bytes} bytes) differs from the manifest's ${f.sha256} (${f.bytes} bytes)`,
      });
    }
    if (rows !== f.rows) {
      report({
        class: 'manifest',
        file: f.name,
        detail: `${f.name}: ${rows} rows, the manifest states ${f.rows}`,
      });
    }
  };

  // 3. Checkpoints: authentic, linked to each other, one chain per seq.
  const signed = new Map<number, Checkpoint>();
  let checkpointCount = 0;
  const cpFile = m.files.find((f) => f.role === 'checkpoints');
  if (m.link && !cpFile) report({ class: 'manifest', detail: 'no checkpoints file listed' });
  if (cpFile && present(cpFile)) {
    let prev: Checkpoint | undefined;
    const unknown = new Set<string>();
    const s = scanLines(join(dir, cpFile.name), (text, line) => {
      let c: Checkpoint | string;
      try {
        c = parseCheckpoint(JSON.parse(text));
      } catch {
        c = 'not JSON';
      }
      if (typeof c === 'string') {
        report({
          class: 'checkpoint',
          file: cpFile.name,
          line,
          detail: `line ${line}: not a checkpoint (${c})`,
        });
        return;
      }
      checkpointCount += 1;
      const k = keys.get(c.keyId);
      if (c.ledgerId !== m.ledgerId) {
        report({
          class: 'checkpoint',
          file: cpFile.name,
          line,
          detail: `checkpoint #${c.n} belongs to ledger ${c.ledgerId}, not ${m.ledgerId}`,
        });
      } else if (!k) {
        if (!unknown.has(c.keyId))
          report({
            class: 'unknown_key',
            file: cpFile.name,
            line,
            detail: `checkpoint #${c.n} is signed by key ${c.keyId}, which is not trusted`,
          });
        unknown.add(c.keyId);
      } else if (!checkpointSignatureValid(c, k.publicKey)) {
        report({
          class: 'bad_signature',
          file: cpFile.name,
          line,
          seq: c.seq,
          detail: `checkpoint #${c.n} (seq ${c.seq}) does not verify under key ${c.keyId}`,
        });
      } else {
        const other = signed.get(c.seq);
        if (other && other.chain !== c.chain) {
          report({
            class: 'checkpoint',
            seq: c.seq,
            detail: `checkpoints #${other.n} and #${c.n} sign different chains for seq ${c.seq}`,
          });
        }
        signed.set(c.seq, c);
      }
      if (prev && (c.n !== prev.n + 1 || c.prev !== prev.sig || c.seq < prev.seq)) {
        report({
          class: 'checkpoint',
          file: cpFile.name,
          line,
          detail: `checkpoint #${c.n} does not follow #${prev.n} (numbering, prev signature or seq)`,
        });
      }
      prev = c;
    });
    checkFile(cpFile, s, checkpointCount);
    const sb = m.link?.sealedBy;
    if (sb && (!prev || prev.n !== sb.n || prev.seq !== sb.seq || prev.chain !== sb.chain)) {
      report({
        class: 'checkpoint',
        file: cpFile.name,
        detail: `the last checkpoint of ${cpFile.name} is not the sealing checkpoint #${sb.n} the manifest names`,
      });
    }
  }

  // 4. The records: re-encoded, in seq order, chained from the anchor.
  const codec = codecFor(m.query.format, {
    ledgerId: m.ledgerId,
    productVersion: m.generator.version,
  });
  const walk = new ChainWalk(m, signed, report);
  for (const f of m.files.filter((x) => x.role === 'records')) {
    if (!present(f)) {
      walk.lost(f);
      continue;
    }
    walk.file(f, codec, join(dir, f.name), checkFile);
  }

  // 5. The tail: leaf hashes up to the sealing checkpoint.
  const tailFile = m.files.find((f) => f.role === 'tail');
  if (m.link && !tailFile) report({ class: 'manifest', detail: 'no tail-leaves file listed' });
  if (m.link && tailFile && present(tailFile))
    walk.tail(tailFile, join(dir, tailFile.name), checkFile);
  const linked = walk.finish();

  const sb = m.link?.sealedBy;
  // The sealing checkpoint against the external log: a bundle exported from a database that
  // was rewritten and re-signed elsewhere carries checkpoints the log never saw.
  if (sb && checkpointLog !== undefined) {
    let inLog = false;
    try {
      inLog = readCheckpointLog(checkpointLog).entries.some(
        (c) =>
          c.ledgerId === m.ledgerId && c.n === sb.n && c.seq === sb.seq && c.chain === sb.chain,
      );
    } catch (err) {
      anchored = false;
      report({
        class: 'checkpoint',
        detail: `cannot read the checkpoint log: ${(err as Error).message}`,
      });
    }
    if (!inLog) {
      report({
        class: 'checkpoint',
        detail: `the sealing checkpoint #${sb.n} (seq ${sb.seq}) is not in the external checkpoint log ${checkpointLog}`,
      });
    }
  }
  return result(m, {
    rows: walk.rows,
    checkpoints: checkpointCount,
    sealedBy: linked && sb ? { n: sb.n, seq: sb.seq, keyId: sb.keyId, time: sb.time } : null,
  });
}
