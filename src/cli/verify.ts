import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  defaultCheckpointLogPath,
  generatedSigningKeyPaths,
  loadTrustedKey,
  type TrustedKey,
} from '../audit/signing-keys.js';
import { defaultArchiveDir } from '../audit/archive.js';
import { verifyLedger, type VerifyReport } from '../audit/verify.js';
import { usage } from './usage.js';

/**
 * `tokenwatch verify --db PATH [--checkpoints FILE] [--public-key FILE]... [--archive DIR]
 *   [--threads N] [--json]`
 *
 * Exit 0 when the ledger is intact, 1 naming the first damaged seq and its class, 2 on usage
 * errors. Without --checkpoints / --public-key, the log and public key beside the database are
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
      db: { type: 'string' },
      checkpoints: { type: 'string' },
      'public-key': { type: 'string', multiple: true },
      threads: { type: 'string' },
      archive: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.db) usage('verify needs --db PATH');
  let threads: number | undefined;
  if (values.threads !== undefined) {
    threads = Number(values.threads);
    if (!Number.isInteger(threads) || threads < 1)
      usage('--threads must be a positive whole number');
  }
  const notes: string[] = [];
  let checkpointLog = values.checkpoints;
  if (checkpointLog === undefined && existsSync(defaultCheckpointLogPath(values.db))) {
    checkpointLog = defaultCheckpointLogPath(values.db);
    notes.push(
      `using the checkpoint log beside the database (${checkpointLog}); an auditor should pass the write-once copy with --checkpoints`,
    );
  }
  let trusted: TrustedKey[];
  if (values['public-key'] && values['public-key'].length > 0) {
    trusted = values['public-key'].map(loadTrustedKey);
  } else {
    const { publicPath } = generatedSigningKeyPaths(values.db);
    trusted = existsSync(publicPath) ? [loadTrustedKey(publicPath)] : [];
    if (trusted.length > 0) {
      notes.push(
        `trusting the public key beside the database (${publicPath}); pass --public-key for an independent check`,
      );
    }
  }
  let archiveDir = values.archive;
  const besideDb = defaultArchiveDir(values.db);
  if (archiveDir === undefined && existsSync(besideDb)) {
    archiveDir = besideDb;
    notes.push(
      `re-hashing the archive files beside the database (${besideDb}); pass --archive for another copy`,
    );
  }
  const report = await verifyLedger({
    dbPath: values.db,
    checkpointLog,
    trusted,
    threads,
    archiveDir,
  });
  // After the `anchored: false` line, which must come first.
  const at = report.warnings[0]?.startsWith('anchored:') ? 1 : 0;
  report.warnings.splice(at, 0, ...notes);
  out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
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
