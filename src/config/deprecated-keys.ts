import type { ConfigIssue } from '../errors.js';

/** A renamed config key: the old name is still read, with a warning, until it is removed. */
interface Rename {
  section: string;
  from: string;
  to: string;
  /** Release notes line: why the key was renamed. */
  why: string;
}

const RENAMES: readonly Rename[] = [
  {
    section: 'audit',
    from: 'flushIntervalMs',
    to: 'maxBatchDelayMs',
    why: '"flush" is kept for Redis FLUSHDB/FLUSHALL (redis.flushCheckIntervalSeconds)',
  },
];

/**
 * Moves deprecated keys of `raw` (the YAML document before validation) to their new names.
 * Returns one warning per old key used; both names at once is an issue, not a guess.
 */
export function applyRenames(raw: Record<string, unknown>, issues: ConfigIssue[]): string[] {
  const warnings: string[] = [];
  for (const r of RENAMES) {
    const section = raw[r.section];
    if (typeof section !== 'object' || section === null || Array.isArray(section)) continue;
    const s = section as Record<string, unknown>;
    if (!(r.from in s)) continue;
    const oldPath = `${r.section}.${r.from}`;
    const newPath = `${r.section}.${r.to}`;
    if (r.to in s) {
      issues.push({ path: oldPath, message: `deprecated name of ${newPath}; set only ${newPath}` });
      delete s[r.from];
      continue;
    }
    s[r.to] = s[r.from];
    delete s[r.from];
    warnings.push(`${oldPath} is deprecated: rename it to ${newPath} (${r.why})`);
  }
  return warnings;
}
