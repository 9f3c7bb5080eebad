import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { describeDamage, ledgerDamage } from '../audit/ledger-check.js';
import { openLedgerStore } from '../audit/store/ledger-store.js';
import { buildMergedReport, type MergedReportLedger } from '../compliance/merged-report.js';
import { renderMergedReportHtml } from '../compliance/merged-report-html.js';
import { buildReport } from '../compliance/report-data.js';
import { renderReportHtml } from '../compliance/report-html.js';
import { policyFromConfig, type Policy } from '../compliance/policy-record.js';
import { loadConfig } from '../config/load.js';
import { expandDbArgs, resolveAnchors, type LedgerAnchors } from './ledger-args.js';
import { parsePeriod, usage } from './usage.js';

/**
 * `tokenwatch report --db PATH... --from ISO --to ISO --format html|json [--out FILE]
 * [--public-key FILE]... [--checkpoints FILE]... [--config FILE] [--node NAME]...`
 *
 * The SOC 2 report of a period (docs/compliance.md#soc-2-report), to FILE or stdout. Checkpoint
 * signatures are checked with --public-key (default: `signing.pub` beside the database). TTL
 * conformance and the SLA come from the ledger's `config.policy` records; --config overrides
 * them for the whole period with that file's token rules and `correlate` thresholds.
 * Several `--db` (or a directory of ledgers): the merged report of several instances
 * (docs/ha-evidence.md#merged-report). Exit 0 when written (whatever the report finds), 2 on
 * usage errors.
 */
export async function reportCommand(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      db: { type: 'string', multiple: true },
      from: { type: 'string' },
      to: { type: 'string' },
      format: { type: 'string', default: 'html' },
      out: { type: 'string' },
      'public-key': { type: 'string', multiple: true },
      checkpoints: { type: 'string', multiple: true },
      config: { type: 'string' },
      node: { type: 'string', multiple: true },
    },
    strict: true,
  });
  if (!values.db || values.db.length === 0) usage('report needs --db PATH');
  const { from, to } = parsePeriod(values, 'report');
  if (values.format !== 'html' && values.format !== 'json') usage('--format must be html or json');
  const { paths, merged } = expandDbArgs(values.db);
  if (!merged && (values.checkpoints?.length ?? 0) > 1)
    usage('--checkpoints is given once per ledger');
  if (!merged && values.node) usage('--node needs several ledgers');
  const ledgers = resolveAnchors(paths, values.checkpoints, values['public-key']);
  for (const l of ledgers) {
    const which = merged ? ` (${l.dbPath})` : '';
    if (l.keyBeside)
      err.write(
        `note: trusting the public key beside the database (${l.keyBeside}); pass --public-key for an independent check\n`,
      );
    else if (l.trusted.length === 0)
      err.write(
        `note: no --public-key and no signing.pub beside the database${which}: checkpoint signatures cannot be verified\n`,
      );
    if (l.logBeside)
      err.write(
        `note: using the checkpoint log beside the database (${l.logBeside}); pass --checkpoints with the write-once copy\n`,
      );
  }
  let policy: Policy | undefined;
  if (values.config !== undefined) {
    policy = policyFromConfig(loadConfig({ file: values.config }).config);
    err.write(
      `note: judging the whole period by ${values.config}, not by the policy recorded in the ledger\n`,
    );
  }
  let text: string;
  if (merged) {
    text = await mergedReport(ledgers, { from, to, policy, nodes: values.node }, values.format);
  } else {
    const [l] = ledgers as [LedgerAnchors];
    // The report reads records outside its period too: the whole ledger is checked first.
    const damage = await ledgerDamage({
      dbPath: l.dbPath,
      checkpointLog: l.checkpointLog,
      trusted: l.trusted,
      from,
    });
    const store = openLedgerStore(l.dbPath);
    try {
      const report = await buildReport({
        store,
        from,
        to,
        trusted: l.trusted,
        policy,
        ledgerDamage: damage.map(describeDamage),
        anchors: { dbPath: l.dbPath, checkpointLog: l.checkpointLog },
      });
      if (report.policy.source === 'none')
        err.write(
          'note: the ledger records no policy for this period (config.policy) and no --config was given: TTL conformance is reported as unknown\n',
        );
      text =
        values.format === 'json'
          ? `${JSON.stringify(report, null, 2)}\n`
          : renderReportHtml(report);
    } finally {
      store.close();
    }
  }
  if (values.out) {
    writeFileSync(values.out, text);
    err.write(`wrote ${values.out}\n`);
  } else {
    out.write(text);
  }
  return 0;
}

/** Several instances' ledgers (docs/ha-evidence.md#merged-report). */
async function mergedReport(
  ledgers: readonly LedgerAnchors[],
  o: { from: number; to: number; policy: Policy | undefined; nodes: string[] | undefined },
  format: 'html' | 'json',
): Promise<string> {
  const opened: MergedReportLedger[] = [];
  try {
    for (const l of ledgers) {
      const damage = await ledgerDamage({
        dbPath: l.dbPath,
        checkpointLog: l.checkpointLog,
        trusted: l.trusted,
        from: o.from,
      });
      opened.push({
        path: l.dbPath,
        store: openLedgerStore(l.dbPath),
        trusted: l.trusted,
        checkpointLog: l.checkpointLog,
        damage: damage.map(describeDamage),
      });
    }
    const report = await buildMergedReport({
      ledgers: opened,
      from: o.from,
      to: o.to,
      ...(o.policy ? { policy: o.policy } : {}),
      ...(o.nodes ? { nodes: o.nodes } : {}),
    });
    return format === 'json'
      ? `${JSON.stringify(report, null, 2)}\n`
      : renderMergedReportHtml(report);
  } finally {
    for (const l of opened) l.store.close();
  }
}
