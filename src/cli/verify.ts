import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultArchiveDir } from '../audit/archive.js';
import { verifyLedger, type VerifyReport } from '../audit/verify.js';
import { verifyMerged } from '../audit/verify-merged.js';
import { expandDbArgs, resolveAnchors } from './ledger-args.js';
import { formatMergedReport } from './verify-merged-format.js';
import { usage } from './usage.js';

/**
 * `tokenwatch verify --db PATH... [--checkpoints FILE]... [--public-key FILE]... [--archive DIR]
 *   [--threads N] [--coverage] [--node NAME]... [--json]`
 *
 * Exit 0 when the ledger is intact, 1 naming the first damaged seq and its class, 2 on usage
 * errors. Several `--db` (or a directory of ledgers): each ledger is verified on its own, then
 * coverage across them (docs/ha-evidence.md), of every node an ownership record names and of
 * each `--node NAME`; exit 0 only when every ledger is intact and coverage is complete.
 * `--coverage` runs the merged check on a single ledger too. Without --checkpoints / --public-key, the log and public key beside the database are
 * used when present (with a warning: an auditor should use the write-once copy and a key
 * obtained independently).
 */
export async function verify(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      db: { type: 'string', multiple: true },
      checkpoints: { type: 'string', multiple: true },
      'public-key': { type: 'string', multiple: true },
      threads: { type: 'string' },
      archive: { type: 'string' },
      json: { type: 'boolean', default: false },
      node: { type: 'string', multiple: true },
      coverage: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.db || values.db.length === 0) usage('verify needs --db PATH');
  let threads: number | undefined;
  if (values.threads !== undefined) {
    threads = Number(values.threads);
    if (!Number.isInteger(threads) || threads < 1)
      usage('--threads must be a positive whole number');
  }
  const expanded = expandDbArgs(values.db);
  const { paths } = expanded;
  const merged = expanded.merged || values.coverage;
  if (!merged && (values.checkpoints?.length ?? 0) > 1)
    usage('--checkpoints is given once per ledger');
  if (!merged && values.node) usage('--node needs several ledgers or --coverage');
  const ledgers = resolveAnchors(paths, values.checkpoints, values['public-key']).map((l) => {
    const notes: string[] = [];
    if (l.logBeside)
      notes.push(
        `using the checkpoint log beside the database (${l.logBeside}); an auditor should pass the write-once copy with --checkpoints`,
      );
    if (l.keyBeside)
      notes.push(
        `trusting the public key beside the database (${l.keyBeside}); pass --public-key for an independent check`,
      );
    let archiveDir = values.archive;
    const besideDb = defaultArchiveDir(l.dbPath);
    if (archiveDir === undefined && existsSync(besideDb)) {
      archiveDir = besideDb;
      notes.push(
        `re-hashing the archive files beside the database (${besideDb}); pass --archive for another copy`,
      );
    }
    return { ...l, notes, archiveDir };
  });
  const options = (l: (typeof ledgers)[number]) => ({
    dbPath: l.dbPath,
    checkpointLog: l.checkpointLog,
    trusted: l.trusted,
    threads,
    archiveDir: l.archiveDir,
  });
  if (!merged) {
    const [l] = ledgers as [(typeof ledgers)[number]];
    const report = await verifyLedger(options(l));
    addNotes(report, l.notes);
    out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return report.ok ? 0 : 1;
  }
  // Several instances' ledgers (docs/ha-evidence.md): each on its own, then coverage.
  const report = await verifyMerged({
    ledgers: ledgers.map(options),
    ...(values.node ? { nodes: values.node } : {}),
  });
  report.ledgers.forEach((r, i) => addNotes(r, ledgers[i]?.notes ?? []));
  out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatMergedReport(report));
  return report.ok ? 0 : 1;
}

/** Puts the command's notes on default anchors after the `anchored: false` line, which must come first. */
function addNotes(report: VerifyReport, notes: readonly string[]): void {
  const at = report.warnings[0]?.startsWith('anchored:') ? 1 : 0;
  report.warnings.splice(at, 0, ...notes);
}

const iso = (t: number): string => new Date(t).toISOString();

/** The human-readable summary `verify` prints without --json. */
export function formatReport(r: VerifyReport): string {
  const lines: string[] = [];
  lines.push(`ledger ${r.ledgerId ?? '(unknown id)'} (schema v${r.schemaVersion})`);
  if (r.range) {
    lines.push(`records: ${r.records} (seq ${r.range.first}..${r.range.last})`);
  } else {
    lines.push('records: none');
  }
  if (r.time) lines.push(`time: ${iso(r.time.first)} .. ${iso(r.time.last)}`);
  const c = r.checkpoints;
  lines.push(
    `checkpoints: ${c.database} in the database, ${c.log === null ? 'no log' : `${c.log} in the log`}${
      c.last ? `; last #${c.last.n} at seq ${c.last.seq}, ${iso(c.last.time)}` : ''
    }${c.keyIds.length > 0 ? `; key ${c.keyIds.join(', ')}` : ''}`,
  );
  const a = r.anchors;
  const keys =
    a.publicKeys.length === 0
      ? 'no public key'
      : a.publicKeys
          .map(
            (k) =>
              `key ${k.keyId} from ${k.source}${k.besideDatabase ? ' (beside the database)' : ''}`,
          )
          .join(', ');
  const log =
    a.checkpointLog === null
      ? 'no checkpoint log'
      : `checkpoint log ${a.checkpointLog.path}${a.checkpointLog.besideDatabase ? ' (beside the database)' : ''}`;
  lines.push(`anchors: ${keys}; ${log}; anchored: ${a.anchored}`);
  if (r.retention)
    lines.push(
      `retention: ${r.retention.days} days (signed in checkpoint #${r.retention.checkpoint})`,
    );
  if (r.sealedByBatch > 0)
    lines.push(`sealed by batch seals after the last checkpoint: ${r.sealedByBatch} record(s)`);
  for (const p of r.pruned) {
    lines.push(
      `pruned by retention: seq ${p.fromSeq}..${p.toSeq} at ${iso(p.at)} (record ${p.seq})`,
    );
  }
  for (const a of r.archives) {
    lines.push(
      `archived: seq ${a.fromSeq}..${a.toSeq} (${a.records} records) in ${a.file}: ${a.checked ? 're-hashed' : 'not checked'} (record ${a.seq})`,
    );
  }
  if (r.archivedRecords > 0) lines.push(`archived records re-hashed: ${r.archivedRecords}`);
  if (r.clock.regressions > 0 || r.clock.flagged > 0) {
    lines.push(
      `clock: ${r.clock.regressions} record(s) earlier than the one before${
        r.clock.regressionSeqs.length > 0 ? ` (seq ${r.clock.regressionSeqs.join(', ')})` : ''
      }, ${r.clock.flagged} audit.clock_skew record(s); seq order is authoritative`,
    );
  }
  if (r.degraded.windows > 0) {
    lines.push(
      `degraded windows: ${r.degraded.windows}, ${r.degraded.droppedRecords} record(s) dropped (stated in audit.degraded records)`,
    );
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  const rate = `${r.records} records in ${(r.stats.durationMs / 1000).toFixed(2)} s, ${r.stats.recordsPerSecond} records/s, ${r.stats.threads} thread(s)`;
  if (r.ok) {
    lines.push(`OK: intact (${rate})`);
  } else {
    const [first] = r.problems;
    lines.push(
      first
        ? `FAILED: ${first.class} at seq ${first.seq}: ${first.detail}`
        : `FAILED: ${r.moreProblems} problem(s)`,
    );
    for (const p of r.problems.slice(1, 50))
      lines.push(`  ${p.class} at seq ${p.seq}: ${p.detail}`);
    const more = Math.max(0, r.problems.length - 50) + r.moreProblems;
    if (more > 0) lines.push(`  ... and ${more} more`);
    lines.push(`(${rate})`);
  }
  return `${lines.join('\n')}\n`;
}
