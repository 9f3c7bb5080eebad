/**
 * Sums Stryker JSON reports (test-artifacts/stryker/<name>.json) into per-file and total mutation
 * scores, computed as Stryker does: (killed + timeout) / (all - ignored - compile/runtime errors).
 * Needed because the correlate scope is run in parts (STRYKER_PART, see stryker.config.mjs), each
 * writing its own report; a file mutated by two parts counts once (the later report wins).
 *
 *   node --experimental-strip-types --no-warnings scripts/mutation-score.ts [prefix]
 *
 * `prefix` selects the reports (default `correlate`: correlate.json and correlate-*.json).
 * Self-contained (node builtins) so that Node runs it with type stripping and no build.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface Report {
  files: Record<string, { mutants: { status: string }[] }>;
}

const DIR = 'test-artifacts/stryker';
const STATUSES = ['Killed', 'Timeout', 'Survived', 'NoCoverage'] as const;
const INVALID = new Set(['Ignored', 'CompileError', 'RuntimeError']);

const prefix = process.argv[2] ?? 'correlate';
const reports = readdirSync(DIR)
  .filter((f) => f.endsWith('.json') && !f.endsWith('.incremental.json'))
  .filter((f) => f === `${prefix}.json` || f.startsWith(`${prefix}-`))
  .map((f) => join(DIR, f))
  .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);

const byFile = new Map<string, Record<string, number>>();
for (const path of reports) {
  const report = JSON.parse(readFileSync(path, 'utf8')) as Report;
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const counts: Record<string, number> = { all: 0, invalid: 0 };
    for (const s of STATUSES) counts[s] = 0;
    for (const m of mutants) {
      counts.all = (counts.all ?? 0) + 1;
      if (INVALID.has(m.status)) counts.invalid = (counts.invalid ?? 0) + 1;
      else counts[m.status] = (counts[m.status] ?? 0) + 1;
    }
    byFile.set(file, counts);
  }
}

const score = (c: Record<string, number>): string => {
  const detected = (c.Killed ?? 0) + (c.Timeout ?? 0);
  const valid = detected + (c.Survived ?? 0) + (c.NoCoverage ?? 0);
  return valid === 0 ? 'n/a' : `${((100 * detected) / valid).toFixed(1)} %`;
};

const total: Record<string, number> = {};
const rows = [...byFile.entries()].sort(([a], [b]) => a.localeCompare(b));
for (const [file, c] of rows) {
  for (const [k, v] of Object.entries(c)) total[k] = (total[k] ?? 0) + v;
  process.stdout.write(
    `${file.padEnd(48)} ${String(c.all).padStart(5)}  killed ${c.Killed} timeout ${c.Timeout}` +
      ` survived ${c.Survived} nocov ${c.NoCoverage} invalid ${c.invalid}  ${score(c)}\n`,
  );
}
process.stdout.write(
  `${'TOTAL'.padEnd(48)} ${String(total.all ?? 0).padStart(5)}  killed ${total.Killed ?? 0}` +
    ` timeout ${total.Timeout ?? 0} survived ${total.Survived ?? 0} nocov ${total.NoCoverage ?? 0}` +
    ` invalid ${total.invalid ?? 0}  ${score(total)}  (${reports.length} reports)\n`,
);
