import { existsSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadTrustedKey } from '../audit/signing-keys.js';
import { verifyExport, type VerifyExportReport } from '../compliance/verify-export.js';
import { usage } from './usage.js';

/**
 * `tokenwatch verify-export DIR --public-key FILE [--public-key FILE]... [--checkpoints FILE] [--json]`
 *
 * Checks an evidence bundle on its own, no database needed: exit 0 when every file, row and
 * signature checks out and the rows link to a signed checkpoint, 1 otherwise, 2 on usage errors.
 */
export function verifyExportCommand(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  // Inside the executor, usage errors reject the promise instead of throwing at the call.
  return new Promise((resolve) => {
    const { values, positionals } = parseArgs({
      args,
      options: {
        'public-key': { type: 'string', multiple: true },
        checkpoints: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      allowPositionals: true,
      strict: true,
    });
    const [dir, ...extra] = positionals;
    if (!dir || extra.length > 0) usage('verify-export needs one bundle directory');
    if (!existsSync(dir) || !statSync(dir).isDirectory()) usage(`${dir} is not a directory`);
    const keys = values['public-key'] ?? [];
    if (keys.length === 0)
      usage('verify-export needs --public-key FILE (the ledger’s Ed25519 public key)');
    const report = verifyExport(dir, keys.map(loadTrustedKey), values.checkpoints);
    out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatVerifyExport(report));
    resolve(report.ok ? 0 : 1);
  });
}

/** The human-readable result of verify-export. */
export function formatVerifyExport(r: VerifyExportReport): string {
  const lines = [`bundle ${r.dir} of ledger ${r.ledgerId ?? '(unknown)'}`];
  if (r.query) lines.push(`query: ${r.query.from} .. ${r.query.to} (${r.query.format})`);
  lines.push(
    r.range
      ? `records: ${r.rows} read, seq ${r.range.firstSeq}..${r.range.lastSeq}`
      : 'records: none',
  );
  lines.push(`anchors: ${r.anchors.join('; ')}; anchored: ${r.anchored}`);
  if (r.ok) {
    lines.push(
      r.sealedBy
        ? `OK: every file, row and signature verifies; linked to checkpoint #${r.sealedBy.n} (seq ${r.sealedBy.seq}, key ${r.sealedBy.keyId})`
        : 'OK: signed manifest of an empty window',
    );
  } else {
    lines.push(`NOT VERIFIED: ${r.reason ?? 'see the problems'}`);
    lines.push(`FAILED: ${r.problems.length + r.moreProblems} problem(s)`);
    for (const p of r.problems.slice(0, 50)) lines.push(`  ${p.class}: ${p.detail}`);
    const more = Math.max(0, r.problems.length - 50) + r.moreProblems;
    if (more > 0) lines.push(`  ... and ${more} more`);
  }
  return `${lines.join('\n')}\n`;
}
