import { existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { describeDamage, ledgerDamage } from '../audit/ledger-check.js';
import { openLedgerStore } from '../audit/store/ledger-store.js';
import {
  defaultCheckpointLogPath,
  generatedSigningKeyPaths,
  loadTrustedKey,
  type TrustedKey,
} from '../audit/signing-keys.js';
import { buildReport } from '../compliance/report-data.js';
import { renderReportHtml } from '../compliance/report-html.js';
import { policyFromConfig, type Policy } from '../compliance/policy-record.js';
import { loadConfig } from '../config/load.js';
import { parsePeriod, usage } from './usage.js';

/**
 * `tokenwatch report --db PATH --from ISO --to ISO --format html|json [--out FILE]
 * [--public-key FILE]... [--checkpoints FILE] [--config FILE]`
 *
 * The SOC 2 report of a period (docs/compliance.md#soc-2-report), to FILE or stdout. Checkpoint
 * signatures are checked with --public-key (default: `signing.pub` beside the database). TTL
 * conformance and the SLA come from the ledger's `config.policy` records; --config overrides
 * them for the whole period with that file's token rules and `correlate` thresholds.
 * Exit 0 when written (whatever the report finds), 2 on usage errors.
 */
export async function reportCommand(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      db: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      format: { type: 'string', default: 'html' },
      out: { type: 'string' },
      'public-key': { type: 'string', multiple: true },
      checkpoints: { type: 'string' },
      config: { type: 'string' },
    },
    strict: true,
  });
  if (!values.db) usage('report needs --db PATH');
  const { from, to } = parsePeriod(values, 'report');
  if (values.format !== 'html' && values.format !== 'json') usage('--format must be html or json');
  let trusted: TrustedKey[];
  if (values['public-key'] && values['public-key'].length > 0) {
    trusted = values['public-key'].map(loadTrustedKey);
  } else {
    const { publicPath } = generatedSigningKeyPaths(values.db);
    trusted = existsSync(publicPath) ? [loadTrustedKey(publicPath)] : [];
    err.write(
      trusted.length > 0
        ? `note: trusting the public key beside the database (${publicPath}); pass --public-key for an independent check\n`
        : 'note: no --public-key and no signing.pub beside the database: checkpoint signatures cannot be verified\n',
    );
  }
  let checkpointLog = values.checkpoints;
  if (checkpointLog === undefined && existsSync(defaultCheckpointLogPath(values.db))) {
    checkpointLog = defaultCheckpointLogPath(values.db);
    err.write(
      `note: using the checkpoint log beside the database (${checkpointLog}); pass --checkpoints with the write-once copy\n`,
    );
  }
  let policy: Policy | undefined;
  if (values.config !== undefined) {
    policy = policyFromConfig(loadConfig({ file: values.config }).config);
    err.write(
      `note: judging the whole period by ${values.config}, not by the policy recorded in the ledger\n`,
    );
  }
  // The report reads records outside its period too: the whole ledger is checked first.
  const damage = await ledgerDamage({ dbPath: values.db, checkpointLog, trusted, from });
  const store = openLedgerStore(values.db);
  let text: string;
  try {
    const report = await buildReport({
      store,
      from,
      to,
      trusted,
      policy,
      ledgerDamage: damage.map(describeDamage),
      anchors: { dbPath: values.db, checkpointLog },
    });
    if (report.policy.source === 'none')
      err.write(
        'note: the ledger records no policy for this period (config.policy) and no --config was given: TTL conformance is reported as unknown\n',
      );
    text =
      values.format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderReportHtml(report);
  } finally {
    store.close();
  }
  if (values.out) {
    writeFileSync(values.out, text);
    err.write(`wrote ${values.out}\n`);
  } else {
    out.write(text);
  }
  return 0;
}
