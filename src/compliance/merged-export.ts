import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertCoverage, checkCoverage, type CoverageReport } from '../audit/coverage.js';
import { readOwnership } from '../audit/ownership-records.js';
import type { SigningKey } from '../audit/signing-keys.js';
import type { LedgerStore } from '../audit/store/ledger-store.js';
import { TokenwatchError } from '../errors.js';
import { VERSION } from '../version.js';
import { MANIFEST_FILE } from './bundle-manifest.js';
import { exportBundle } from './export-bundle.js';
import type { ExportFormat } from './row-codec.js';
import { countTokens, type MergedTokenCounts } from './token-dedup.js';

/** The derived file beside the bundles of a merged export. */
export const MERGED_FILE = 'merged.json';

/** One instance's ledger to export, with its own signing key. */
export interface MergedExportLedger {
  path: string;
  store: LedgerStore;
  key: SigningKey;
}

export interface MergedExportOptions {
  ledgers: readonly MergedExportLedger[];
  from: number;
  to: number;
  format: ExportFormat;
  /** Must not exist, or be empty. */
  outDir: string;
  rowsPerFile?: number;
  /** Nodes coverage must prove even when no ledger names them. */
  nodes?: readonly string[];
  now?: () => number;
}

/** `merged.json`: what ties the bundles together. Derived from them, not signed (see docs). */
export interface MergedExportIndex {
  format: 'tokenwatch-merged-export';
  version: 1;
  generator: { name: 'tokenwatch'; version: string };
  generatedAt: number;
  period: { from: number; to: number };
  bundles: {
    dir: string;
    ledgerId: string;
    path: string;
    records: number;
    firstSeq: number | null;
    lastSeq: number | null;
    signingKeyId: string;
    /** SHA-256 of the bundle's manifest.json (itself signed by the ledger's key). */
    manifestSha256: string;
  }[];
  coverage: CoverageReport;
  /** Token counts across the bundles, each event once, and per ledger the seqs not counted. */
  tokens: MergedTokenCounts;
}

/**
 * Exports several instances' ledgers of one period (docs/ha-evidence.md#export): one evidence
 * bundle per ledger (exportBundle, unchanged: each signed by its own ledger's key and checked
 * with verify-export on its own) under `<outDir>/<ledgerId>/`, plus `merged.json`: coverage and
 * the deduplication, as data anyone can recompute from the bundles. Refused before anything is
 * written when coverage is incomplete (ERR_COVERAGE_INCOMPLETE). The caller has verified each
 * ledger (a damaged ledger is not exported).
 */
export async function exportMerged(o: MergedExportOptions): Promise<MergedExportIndex> {
  const now = o.now ?? Date.now;
  if (!(o.from < o.to)) throw new TokenwatchError('ERR_USAGE', 'from must be before to');
  const owners = o.ledgers.map((l) => readOwnership(l.store, l.path));
  const ids = owners.map((w) => w.ledger);
  if (new Set(ids).size !== ids.length)
    throw new TokenwatchError('ERR_USAGE', 'the same ledger is given twice');
  const coverage = checkCoverage({
    ledgers: owners,
    from: o.from,
    to: o.to,
    ...(o.nodes ? { nodes: o.nodes } : {}),
  });
  assertCoverage(coverage);
  if (existsSync(o.outDir) && readdirSync(o.outDir).length > 0)
    throw new TokenwatchError(
      'ERR_EXPORT_TARGET_EXISTS',
      `${o.outDir} exists and is not empty: choose a new directory`,
    );
  mkdirSync(o.outDir, { recursive: true });
  const bundles: MergedExportIndex['bundles'] = [];
  for (const [i, l] of o.ledgers.entries()) {
    const dir = ids[i] as string;
    const { manifest } = await exportBundle({
      store: l.store,
      from: o.from,
      to: o.to,
      format: o.format,
      outDir: join(o.outDir, dir),
      key: l.key,
      now,
      ...(o.rowsPerFile === undefined ? {} : { rowsPerFile: o.rowsPerFile }),
    });
    bundles.push({
      dir,
      ledgerId: dir,
      path: l.path,
      records: manifest.range?.records ?? 0,
      firstSeq: manifest.range?.firstSeq ?? null,
      lastSeq: manifest.range?.lastSeq ?? null,
      signingKeyId: manifest.signingKeyId,
      manifestSha256: createHash('sha256')
        .update(readFileSync(join(o.outDir, dir, MANIFEST_FILE)))
        .digest('hex'),
    });
  }
  const tokens = await countTokens(
    o.ledgers.map((l, i) => ({ ledger: ids[i] as string, store: l.store })),
    owners,
    o.from,
    o.to,
    true,
  );
  const index: MergedExportIndex = {
    format: 'tokenwatch-merged-export',
    version: 1,
    generator: { name: 'tokenwatch', version: VERSION },
    generatedAt: now(),
    period: { from: o.from, to: o.to },
    bundles,
    coverage,
    tokens,
  };
  writeFileSync(join(o.outDir, MERGED_FILE), `${JSON.stringify(index, null, 2)}\n`, { flag: 'wx' });
  return index;
}
