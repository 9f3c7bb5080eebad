import type { CoverageReport } from '../audit/coverage.js';
import type { MergedVerifyReport } from '../audit/verify-merged.js';
import { formatReport } from './verify.js';

const iso = (t: number): string => new Date(t).toISOString();

/**
 * The human-readable summary of a merged verify: each ledger's own summary, exactly as a
 * single `verify` prints it, under its path; then coverage; then the verdict.
 */
export function formatMergedReport(r: MergedVerifyReport): string {
  const parts: string[] = [];
  for (const l of r.ledgers) parts.push(`== ${l.path}\n${formatReport(l)}`);
  parts.push(formatCoverage(r.coverage, r.untrusted));
  const failedLedgers = r.ledgers.filter((l) => !l.ok).length;
  parts.push(
    r.ok
      ? `OK: ${r.ledgers.length} ledger(s) intact, coverage complete\n`
      : `FAILED: ${
          failedLedgers > 0 ? `${failedLedgers} ledger(s) damaged` : 'every ledger intact'
        }; coverage ${r.coverage.ok ? 'complete over the ledgers that verify' : `incomplete (${r.coverage.problems.length} problem(s))`}\n`,
  );
  return parts.join('\n');
}

/** The coverage section: per node, its epochs and gaps; then every problem. */
export function formatCoverage(c: CoverageReport, untrusted: readonly string[] = []): string {
  const lines: string[] = [
    `== coverage ${iso(c.period.from)} .. ${iso(c.period.to)} over ${c.ledgers.length} ledger(s)`,
  ];
  for (const u of untrusted) lines.push(`not read (does not verify): ${u}`);
  for (const n of c.nodes) {
    lines.push(
      `node ${n.node}: ${(n.covered * 100).toFixed(2)}% of ${iso(n.window.from)} .. ${iso(n.window.to)} owned or stated blind`,
    );
    for (const e of n.epochs)
      lines.push(
        `  epoch ${e.epoch} ${e.instance ?? '(no instance)'} in ${e.label}: ${iso(e.start)} .. ${iso(e.end)} (${e.endedBy})`,
      );
    for (const g of n.gaps) lines.push(`  keyspace.gap ${iso(g.start)} .. ${iso(g.end)}`);
  }
  for (const w of c.warnings) lines.push(`warning: ${w}`);
  for (const p of c.problems)
    lines.push(
      `${p.class} node ${p.node}${p.epoch === null ? '' : ` epoch ${p.epoch}`}: ${p.detail}`,
    );
  lines.push(
    c.ok ? 'coverage: complete' : `coverage: INCOMPLETE (${c.problems.length} problem(s))`,
  );
  return `${lines.join('\n')}\n`;
}
