import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  LEDGER_FORMAT_VERSION,
  canonicalRecord,
  chainHashHex,
  leafHashHex,
} from '../audit/canonical.js';
import { checkpointLine, type Checkpoint } from '../audit/checkpoint.js';
import { leafMatches } from '../audit/record-codec.js';
import type { SigningKey } from '../audit/signing-keys.js';
import type { LedgerStore } from '../audit/store/ledger-store.js';
import { TokenwatchError } from '../errors.js';
import { VERSION } from '../version.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  CHECKPOINTS_FILE,
  MANIFEST_FILE,
  SIGNATURE_FILE,
  TAIL_FILE,
  manifestBytes,
  signManifest,
  type Manifest,
  type ManifestFile,
} from './bundle-manifest.js';
import { FileSink } from './file-sink.js';
import { yieldToLoop } from './yield-to-loop.js';
import { OCSF_MAPPING_VERSION } from './ocsf.js';
import { attrsRoundTrip, codecFor, type ExportFormat, type RowCodec } from './row-codec.js';

export interface ExportOptions {
  /** The ledger's reads (a read-only connection is enough). */
  store: LedgerStore;
  /** Observed-time window [from, to), unix ms. */
  from: number;
  to: number;
  format: ExportFormat;
  /** Bundle directory: must not exist, or be empty. Written beside it, then renamed into place. */
  outDir: string;
  /** The ledger's Ed25519 signing key: signs manifest.sig. */
  key: SigningKey;
  now?: () => number;
  /** Rows per data file (default 250 000). */
  rowsPerFile?: number;
  /** Records read per query (default 2000). */
  pageSize?: number;
  /**
   * Called once when the end of the range is not sealed by a checkpoint yet; the service signs
   * one here (the CLI cannot, and fails with ERR_EXPORT_UNSEALED).
   */
  seal?: () => void;
  /** Called after every page with the rows written so far (progress, memory tests). */
  onProgress?: (rows: number) => void;
}

export interface ExportResult {
  dir: string;
  manifest: Manifest;
}

const DEFAULT_ROWS_PER_FILE = 250_000;
const EMPTY: Record<string, unknown> = Object.freeze({});

/**
 * Writes an evidence bundle: the records observed in [from, to) as data files, the checkpoints
 * that cover them, the leaf hashes that link the last record to the first checkpoint at or after
 * it, and a signed manifest (docs/compliance.md#evidence-bundles). Streams page by page, so
 * memory stays flat however large the range.
 *
 * Every record is re-hashed on the way out and checked against the stored leaf and chain, and
 * the chain must reach the sealing checkpoint's signed chain: a damaged ledger is never
 * exported as evidence (ERR_LEDGER_INTEGRITY: run `tokenwatch verify`).
 */
export async function exportBundle(o: ExportOptions): Promise<ExportResult> {
  const now = o.now ?? Date.now;
  if (!(o.from < o.to)) throw new TokenwatchError('ERR_USAGE', 'from must be before to');
  const ledgerId = o.store.ledgerId();
  const range = o.store.seqRangeForWindow(o.from, o.to);
  let sealed: Checkpoint | undefined;
  if (range) {
    sealed = o.store.sealingCheckpoint(range.lastSeq, ledgerId);
    if (!sealed && o.seal) {
      o.seal();
      sealed = o.store.sealingCheckpoint(range.lastSeq, ledgerId);
    }
    if (!sealed) {
      throw new TokenwatchError(
        'ERR_EXPORT_UNSEALED',
        `records up to seq ${range.lastSeq} are not sealed by a signed checkpoint yet (the newest covers seq ${o.store.lastCheckpointSeq()}); export again after the next checkpoint, or end the window earlier`,
      );
    }
  }

  const { tmp, finish, abandon } = await stagingDir(o.outDir);
  try {
    const codec = codecFor(o.format, { ledgerId, productVersion: VERSION });
    const files: ManifestFile[] = [];
    const countsByType: Record<string, number> = {};
    let link: Manifest['link'] = null;
    let manifestRange: Manifest['range'] = null;
    if (range && sealed) {
      const anchor = o.store.chainAnchor(range.firstSeq);
      const w = await writeRecords(o, codec, tmp, range, anchor.chain, sealed, countsByType);
      files.push(...w.files);
      manifestRange = {
        firstSeq: range.firstSeq,
        lastSeq: range.lastSeq,
        records: range.lastSeq - range.firstSeq + 1,
        timeOutliers: w.timeOutliers,
        firstTime: new Date(w.firstTime).toISOString(),
        lastTime: new Date(w.lastTime).toISOString(),
      };
      files.push(await writeCheckpoints(o.store, tmp, anchor.seq, sealed, ledgerId));
      link = {
        anchor,
        sealedBy: {
          n: sealed.n,
          seq: sealed.seq,
          chain: sealed.chain,
          keyId: sealed.keyId,
          time: sealed.time,
        },
        tail: { fromSeq: range.lastSeq + 1, toSeq: sealed.seq },
      };
    }
    const manifest: Manifest = {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      generator: { name: 'tokenwatch', version: VERSION },
      createdAt: new Date(now()).toISOString(),
      ledgerId,
      ledgerFormatVersion: LEDGER_FORMAT_VERSION,
      query: {
        from: new Date(o.from).toISOString(),
        to: new Date(o.to).toISOString(),
        format: o.format,
      },
      range: manifestRange,
      countsByType,
      ...(o.format === 'ocsf' ? { ocsfMapping: OCSF_MAPPING_VERSION } : {}),
      link,
      signingKeyId: o.key.keyId,
      files,
    };
    const bytes = manifestBytes(manifest);
    writeFileSync(join(tmp, MANIFEST_FILE), bytes, { flag: 'wx' });
    writeFileSync(join(tmp, SIGNATURE_FILE), signManifest(bytes, o.key), { flag: 'wx' });
    finish();
    return { dir: o.outDir, manifest };
  } catch (err) {
    abandon();
    throw err;
  }
}

interface Written {
  files: ManifestFile[];
  timeOutliers: number;
  firstTime: number;
  lastTime: number;
}

async function writeRecords(
  o: ExportOptions,
  codec: RowCodec,
  dir: string,
  range: { firstSeq: number; lastSeq: number },
  anchor: string,
  sealed: Checkpoint,
  countsByType: Record<string, number>,
): Promise<Written> {
  const perFile = o.rowsPerFile ?? DEFAULT_ROWS_PER_FILE;
  const files: ManifestFile[] = [];
  let sink: FileSink | undefined;
  let current: ManifestFile | undefined;
  const tail = await FileSink.create(join(dir, TAIL_FILE));
  let tailRows = 0;
  let chain = anchor;
  let expected = range.firstSeq;
  let written = 0;
  let timeOutliers = 0;
  let firstTime = 0;
  let lastTime = 0;

  const closeFile = async (): Promise<void> => {
    if (!sink || !current) return;
    const { bytes, sha256 } = await sink.close();
    files.push({ ...current, bytes, sha256, chainAtEnd: chain });
    sink = undefined;
    current = undefined;
  };

  try {
    for (const page of o.store.recordPages(range.firstSeq, sealed.seq, o.pageSize)) {
      for (const r of page) {
        if (r.seq !== expected) {
          throw integrity(`record ${expected} is missing from the ledger (next is ${r.seq})`);
        }
        expected += 1;
        const canonical = canonicalRecord(r);
        const leaf = leafHashHex(canonical);
        if (!leafMatches(leaf, r.leaf)) {
          throw integrity(`record ${r.seq} does not hash to its stored leaf`);
        }
        if (r.seq === range.lastSeq + 1) await closeFile();
        if (r.seq <= range.lastSeq && (!sink || !current || current.rows >= perFile)) {
          await closeFile(); // before the chain moves on: chainAtEnd is the file's last record's
          const name = `records-${String(files.length + 1).padStart(6, '0')}.${codec.extension}`;
          sink = await FileSink.create(join(dir, name));
          current = { name, role: 'records', rows: 0, bytes: 0, sha256: '', firstSeq: r.seq };
          if (codec.header !== null) await sink.line(codec.header);
        }
        chain = chainHashHex(chain, leaf);
        if (chain !== r.chain) {
          throw integrity(`record ${r.seq}: stored chain differs from the recomputed one`);
        }
        if (r.seq > range.lastSeq || !sink || !current) {
          if (tail.push(leaf)) await tail.flush();
          tailRows += 1;
          continue;
        }
        // CSV and OCSF (raw_data) carry the stored attrs text as is; JSON lines nest it as an
        // object, which must encode back to the very same text for the row to verify.
        const attrs =
          codec.format === 'csv'
            ? EMPTY
            : codec.format === 'ocsf'
              ? (JSON.parse(r.attrs) as Record<string, unknown>)
              : attrsRoundTrip(r.attrs);
        if (!attrs) throw integrity(`record ${r.seq}: stored attributes are not canonical JSON`);
        if (sink.push(codec.encode(r, attrs, canonical))) await sink.flush();
        current.rows += 1;
        current.lastSeq = r.seq;
        countsByType[r.type] = (countsByType[r.type] ?? 0) + 1;
        if (r.time < o.from || r.time >= o.to) timeOutliers += 1;
        if (r.seq === range.firstSeq) firstTime = r.time;
        lastTime = r.time;
        written += 1;
      }
      o.onProgress?.(written);
      await yieldToLoop();
    }
    if (expected !== sealed.seq + 1) {
      throw integrity(
        `the ledger ends at seq ${expected - 1}, before checkpoint #${sealed.n} (seq ${sealed.seq})`,
      );
    }
    if (chain !== sealed.chain) {
      throw integrity(
        `the chain of seq ${range.firstSeq}..${sealed.seq} does not reach the one checkpoint #${sealed.n} signed`,
      );
    }
    await closeFile();
  } finally {
    await sink?.close();
    const t = await tail.close();
    files.push({ name: TAIL_FILE, role: 'tail', rows: tailRows, bytes: t.bytes, sha256: t.sha256 });
  }
  return { files, timeOutliers, firstTime, lastTime };
}

async function writeCheckpoints(
  store: LedgerStore,
  dir: string,
  anchorSeq: number,
  sealed: Checkpoint,
  ledgerId: string,
): Promise<ManifestFile> {
  const sink = await FileSink.create(join(dir, CHECKPOINTS_FILE));
  let rows = 0;
  try {
    for (const c of store.checkpointsBetween(anchorSeq, sealed.n, ledgerId)) {
      await sink.line(checkpointLine(c).trimEnd());
      rows += 1;
    }
  } finally {
    await sink.close();
  }
  const { bytes, sha256 } = await sink.close();
  return { name: CHECKPOINTS_FILE, role: 'checkpoints', rows, bytes, sha256 };
}

function integrity(message: string): TokenwatchError {
  return new TokenwatchError(
    'ERR_LEDGER_INTEGRITY',
    `refusing to export: ${message}; run tokenwatch verify`,
  );
}

/**
 * A fresh sibling directory to write into; `finish` moves it to `outDir` (which must not exist
 * or be empty), `abandon` removes it. A crashed export never leaves a half bundle at `outDir`.
 */
async function stagingDir(
  outDir: string,
): Promise<{ tmp: string; finish: () => void; abandon: () => void }> {
  if (existsSync(outDir) && readdirSync(outDir).length > 0) {
    throw new TokenwatchError('ERR_EXPORT_TARGET_EXISTS', `${outDir} exists and is not empty`);
  }
  await mkdir(dirname(outDir), { recursive: true });
  const tmp = join(
    dirname(outDir),
    `.${basename(outDir)}.partial-${randomBytes(4).toString('hex')}`,
  );
  await mkdir(tmp, { mode: 0o750 });
  return {
    tmp,
    finish: () => {
      if (existsSync(outDir)) rmdirSync(outDir); // empty (checked above)
      renameSync(tmp, outDir);
    },
    abandon: () => rmSync(tmp, { recursive: true, force: true }),
  };
}
