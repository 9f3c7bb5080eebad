import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Only src/audit/ touches the ledger's tables (issue #18.1): other folders read through
 * LedgerStore (src/audit/store/ledger-store.ts) and never hold a raw connection.
 */

const SRC = join(import.meta.dirname, '..', '..', 'src');

/** SQL naming one of the ledger's tables (keywords in capitals, as all SQL here is written). */
const LEDGER_SQL =
  /\b(?:FROM|INTO|UPDATE|JOIN|TABLE(?: IF (?:NOT )?EXISTS)?|ON)\s+["`]?(records|checkpoints|seals|meta)\b/;

/** A raw connection to a ledger file: the driver, the file opener, or the Ledger's own one. */
const RAW_CONNECTION = /from 'better-sqlite3'|\bopenLedgerFile\(|\bledger\.db\b/;

/**
 * Files outside src/audit/ allowed a raw connection, each with its reason.
 * - src/bench/ledger-ceilings.ts measures SQLite's bare INSERT speed with the ledger's schema,
 *   on purpose without the Ledger, on a throw-away file of its own (never the service's ledger).
 */
const RAW_CONNECTION_ALLOWED = new Set(['bench/ledger-ceilings.ts']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Source files outside src/audit/, as paths relative to src/ with forward slashes. */
function outsideAudit(): { rel: string; text: string }[] {
  return sources(SRC)
    .map((path) => ({ rel: relative(SRC, path).split(sep).join('/'), path }))
    .filter(({ rel }) => !rel.startsWith('audit/'))
    .map(({ rel, path }) => ({ rel, text: readFileSync(path, 'utf8') }));
}

function offending(text: string, pattern: RegExp): string[] {
  return text.split('\n').filter((line) => pattern.test(line));
}

describe('the ledger has one owner', () => {
  it('the patterns catch what they are meant to, and not prose', () => {
    expect(LEDGER_SQL.test('SELECT seq FROM records WHERE seq > ?')).toBe(true);
    expect(LEDGER_SQL.test("SELECT v FROM meta WHERE k = 'ledger_id'")).toBe(true);
    expect(LEDGER_SQL.test('SELECT 1 FROM seals LIMIT 1')).toBe(true);
    expect(LEDGER_SQL.test('INSERT INTO checkpoints (n) VALUES (?)')).toBe(true);
    expect(LEDGER_SQL.test('DELETE FROM records WHERE seq = 1')).toBe(true);
    expect(LEDGER_SQL.test('CREATE TRIGGER t BEFORE DELETE ON records')).toBe(true);
    expect(LEDGER_SQL.test('reads the records from the ledger, the seals of meta')).toBe(false);
    expect(RAW_CONNECTION.test("import type Database from 'better-sqlite3';")).toBe(true);
    expect(RAW_CONNECTION.test('const rows = this.#o.ledger.db.prepare(sql)')).toBe(true);
    expect(RAW_CONNECTION.test('this.#o.ledger.dbPath')).toBe(false);
  });

  it('no SQL on records, checkpoints, seals or meta outside src/audit/', () => {
    const found = outsideAudit().flatMap(({ rel, text }) =>
      offending(text, LEDGER_SQL).map((line) => `${rel}: ${line.trim()}`),
    );
    expect(found).toEqual([]);
  });

  it('no raw ledger connection outside src/audit/ (LedgerStore instead)', () => {
    const found = outsideAudit()
      .filter(({ rel }) => !RAW_CONNECTION_ALLOWED.has(rel))
      .flatMap(({ rel, text }) =>
        offending(text, RAW_CONNECTION).map((line) => `${rel}: ${line.trim()}`),
      );
    expect(found).toEqual([]);
  });

  it('every allowed exception still exists and still needs its exception', () => {
    const files = new Map(outsideAudit().map((f) => [f.rel, f.text]));
    for (const rel of RAW_CONNECTION_ALLOWED) {
      expect(offending(files.get(rel) ?? '', RAW_CONNECTION), rel).not.toEqual([]);
    }
  });
});
