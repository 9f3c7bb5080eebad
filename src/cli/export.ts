import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ledgerDamage, refuseDamaged } from '../audit/ledger-check.js';
import { openLedgerStore } from '../audit/store/ledger-store.js';
import {
  defaultCheckpointLogPath,
  generatedSigningKeyPaths,
  loadSigningKey,
  loadTrustedKey,
} from '../audit/signing-keys.js';
import { exportBundle } from '../compliance/export-bundle.js';
import { EXPORT_FORMATS, type ExportFormat } from '../compliance/row-codec.js';
import { expandDbArgs } from './ledger-args.js';
import { parsePeriod, usage } from './usage.js';

/**
 * `tokenwatch export --db PATH --from ISO --to ISO --format csv|jsonl|ocsf --out DIR
 * [--signing-key FILE] [--rows-per-file N]`
 *
 * Writes an evidence bundle (docs/compliance.md#evidence-bundles). The manifest is signed with
 * the ledger's Ed25519 key: `--signing-key`, else `signing.key` beside the database. Exit 0 when
 * written, 1 when the range cannot be exported (not sealed by a checkpoint yet, or damaged).
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
      'signing-key': { type: 'string' },
      'rows-per-file': { type: 'string' },
      'public-key': { type: 'string', multiple: true },
      checkpoints: { type: 'string' },
    },
    strict: true,
  });
  if (!values.db || values.db.length === 0) usage('export needs --db PATH');
  const { paths, merged } = expandDbArgs(values.db);
  // One bundle is one ledger's, signed by its key (docs/ha-evidence.md#export).
  if (merged || paths.length !== 1)
    usage('export takes one ledger: run it once per instance (docs/ha-evidence.md#export)');
  const [db] = paths as [string];
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
  const keyPath = values['signing-key'] ?? generatedSigningKeyPaths(db).privatePath;
  if (!existsSync(keyPath))
    usage(`no signing key at ${keyPath}: pass --signing-key FILE (the ledger's audit.signingKey)`);
  const key = loadSigningKey(keyPath);
  // The whole ledger is verified first, against the external log when given (else the one beside
  // the database): a damaged ledger, a forged purge or a rolled-back copy is not exported.
  const trusted =
    values['public-key'] && values['public-key'].length > 0
      ? values['public-key'].map(loadTrustedKey)
      : [{ keyId: key.keyId, publicKey: key.publicKey, source: keyPath }];
  const beside = defaultCheckpointLogPath(db);
  const checkpointLog = values.checkpoints ?? (existsSync(beside) ? beside : undefined);
  refuseDamaged(await ledgerDamage({ dbPath: db, checkpointLog, trusted, from }));
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
