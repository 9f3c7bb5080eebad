import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ERRORS, TokenwatchError } from '../src/errors.js';
import type { ErrorCode } from '../src/errors.js';

const ROOT = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** `| \`ERR_X\` | 400 | ... |` rows of docs/errors.md. */
function documented(): Map<string, number> {
  const rows = new Map<string, number>();
  const text = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  for (const m of text.matchAll(/^\|\s*`(ERR_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) {
    expect(rows.has(m[1]!), `${m[1]} listed twice`).toBe(false);
    rows.set(m[1]!, Number(m[2]));
  }
  return rows;
}

describe('error catalogue', () => {
  it('docs/errors.md lists exactly the catalogue, with the same statuses', () => {
    const docs = documented();
    const catalogue = new Map(Object.entries(ERRORS).map(([code, s]) => [code, s.status]));
    expect(Object.fromEntries(docs)).toEqual(Object.fromEntries(catalogue));
  });

  it('every code is raised somewhere in src/ (not only compared against)', () => {
    const text = sources(join(ROOT, 'src'))
      .filter((p) => !p.endsWith(join('src', 'errors.ts')))
      .map((p) => readFileSync(p, 'utf8'))
      .join('\n');
    const raised = new Set<string>();
    for (const m of text.matchAll(/(===\s*|!==\s*)?'(ERR_[A-Z_]+)'/g)) {
      if (m[1] === undefined) raised.add(m[2]!);
    }
    // ConfigError raises ERR_CONFIG_INVALID from inside the catalogue's own file.
    raised.add(new ConfigError([]).code);
    const never = (Object.keys(ERRORS) as ErrorCode[]).filter((c) => !raised.has(c));
    expect(never).toEqual([]);
  });

  it('the status comes from the code, one place', () => {
    expect(new TokenwatchError('ERR_EXPORT_BUSY', 'x').status).toBe(429);
    expect(new TokenwatchError('ERR_BAD_REQUEST', 'x').status).toBe(400);
    expect(new TokenwatchError('ERR_USAGE', 'x').status).toBe(400);
    expect(new TokenwatchError('ERR_LEDGER_INTEGRITY', 'x').status).toBe(409);
  });
});
