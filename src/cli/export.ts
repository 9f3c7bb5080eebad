import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ledgerDamage, refuseDamaged } from '../audit/ledger-check.js';
import { openLedgerStore } from '../audit/store/ledger-store.js';
import {
  defaultCheckpointLogPath,
  generatedSigningKeyPaths,
  loadSigningKey,
  loadTrustedKey,
  type SigningKey,
} from '../audit/signing-keys.js';
import type { LedgerStore } from '../audit/store/ledger-store.js';
import { exportBundle } from '../compliance/export-bundle.js';
import { exportMerged, MERGED_FILE } from '../compliance/merged-export.js';
import { EXPORT_FORMATS, type ExportFormat } from '../compliance/row-codec.js';
import { expandDbArgs } from './ledger-args.js';
import { parsePeriod, usage } from './usage.js';

/**
 * `tokenwatch export --db PATH... --from ISO --to ISO --format csv|jsonl|ocsf --out DIR
 * [--signing-key FILE]... [--checkpoints FILE]... [--rows-per-file N] [--node NAME]...`
 *
 * Writes an evidence bundle (docs/compliance.md#evidence-bundles). The manifest is signed with
 * the ledger's Ed25519 key: `--signing-key`, else `signing.key` beside the database. Exit 0 when
 * written, 1 when the range cannot be exported (not sealed by a checkpoint yet, or damaged).
 * Several `--db` (or a directory): one bundle per ledger, each signed by its own key
 * (`--signing-key` once per ledger, in order), and `merged.json` with coverage and the
 * deduplication; exit 1 without writing when coverage is incomplete (docs/ha-evidence.md#export).
 */
export async function exportCommand(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      db: { type: 'string', multiple: true },
      from: { type: 'string' },
      to: { type: 'string' },
      format: { type: 'string', default: 'jsonl' },
      out: { type: 'string' },
      'signing-key': { type: 'string', multiple: true },
      'rows-per-file': { type: 'string' },
      'public-key': { type: 'string', multiple: true },
      checkpoints: { type: 'string', multiple: true },
      node: { type: 'string', multiple: true },
    },
    strict: true,
  });
  if (!values.db || values.db.length === 0) usage('export needs --db PATH');
  const { paths, merged } = expandDbArgs(values.db);
  if (!values.out) usage('export needs --out DIR');
  const { from, to } = parsePeriod(values, 'export');
  const format = values.format as ExportFormat;
  if (!EXPORT_FORMATS.includes(format))
    usage(`--format must be one of ${EXPORT_FORMATS.join(', ')}`);
  let rowsPerFile: number | undefined;
  if (values['rows-per-file'] !== undefined) {
    rowsPerFile = Number(values['rows-per-file']);
    if (!Number.isInteger(rowsPerFile) || rowsPerFile < 1)
      usage('--rows-per-file must be a positive whole number');
  }
  for (const [flag, list] of [
    ['--signing-key', values['signing-key']],
    ['--checkpoints', values.checkpoints],
  ] as const)
    if (list && list.length > 0 && list.length !== paths.length)
      usage(`${flag} must be given once per ledger, in the same order (${paths.length} ledger(s))`);
  if (!merged && values.node) usage('--node needs several ledgers');
  // Each ledger is verified first, against its external log when given (else the one beside
  // the database): a damaged ledger, a forged purge or a rolled-back copy is not exported.
  const checked: { db: string; key: SigningKey }[] = [];
  for (const [i, db] of paths.entries()) {
    const keyPath = values['signing-key']?.[i] ?? generatedSigningKeyPaths(db).privatePath;
    if (!existsSync(keyPath))
      usage(
        `no signing key at ${keyPath}: pass --signing-key FILE (the ledger's audit.signingKey)`,
      );
    const key = loadSigningKey(keyPath);
    const trusted =
      values['public-key'] && values['public-key'].length > 0
        ? values['public-key'].map(loadTrustedKey)
        : [{ keyId: key.keyId, publicKey: key.publicKey, source: keyPath }];
    const beside = defaultCheckpointLogPath(db);
    const checkpointLog = values.checkpoints?.[i] ?? (existsSync(beside) ? beside : undefined);
    refuseDamaged(await ledgerDamage({ dbPath: db, checkpointLog, trusted, from }));
    checked.push({ db, key });
  }
  if (merged)
    return mergedExport(
      checked,
      { from, to, format, outDir: values.out, rowsPerFile, nodes: values.node },
      out,
    );
  const [{ db, key }] = checked as [(typeof checked)[number]];
  const store = openLedgerStore(db);
  try {
    const { manifest } = await exportBundle({
      store,
      from,
      to,
      format,
      outDir: values.out,
      key,
      rowsPerFile,
    });
    const r = manifest.range;
    const link = manifest.link;
    out.write(
      `${values.out}: ${r ? `${r.records} records, seq ${r.firstSeq}..${r.lastSeq}` : 'no records in the window'}, ${manifest.files.length} files (${format})\n` +
        (link
          ? `linked to checkpoint #${link.sealedBy.n} (seq ${link.sealedBy.seq}, key ${link.sealedBy.keyId})\n`
          : '') +
        `manifest signed by key ${manifest.signingKeyId}; check with: tokenwatch verify-export ${values.out} --public-key PUBLIC_KEY\n`,
    );
    return 0;
  } finally {
    store.close();
  }
}

/** Several instances' ledgers: one bundle each plus merged.json (docs/ha-evidence.md#export). */
async function mergedExport(
  ledgers: readonly { db: string; key: SigningKey }[],
  o: {
    from: number;
    to: number;
    format: ExportFormat;
    outDir: string;
    rowsPerFile: number | undefined;
    nodes: string[] | undefined;
  },
  out: NodeJS.WritableStream,
): Promise<number> {
  const stores = ledgers.map((l) => openLedgerStore(l.db));
  try {
    const index = await exportMerged({
      ledgers: ledgers.map((l, i) => ({ path: l.db, store: stores[i] as LedgerStore, key: l.key })),
      from: o.from,
      to: o.to,
      format: o.format,
      outDir: o.outDir,
      ...(o.rowsPerFile === undefined ? {} : { rowsPerFile: o.rowsPerFile }),
      ...(o.nodes ? { nodes: o.nodes } : {}),
    });
    for (const b of index.bundles)
      out.write(
        `${join(o.outDir, b.dir)}: ${b.records} records${b.firstSeq === null ? '' : `, seq ${b.firstSeq}..${b.lastSeq}`} of ${b.path}, manifest signed by key ${b.signingKeyId}\n`,
      );
    const t = index.tokens;
    out.write(
      `${join(o.outDir, MERGED_FILE)}: coverage complete; token records ${t.counted} counted, ${t.duplicates} duplicate(s) and ${t.fencedExcluded} of fenced epochs not counted (seqs listed)\n` +
        `check each bundle with: tokenwatch verify-export DIR --public-key THAT_INSTANCE_PUBLIC_KEY\n`,
    );
    return 0;
  } finally {
    for (const s of stores) s.close();
  }
}
