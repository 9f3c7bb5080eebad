import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

import { ReplayStore } from '../../src/audit/replay-store.js';
import { migrate } from '../../src/audit/schema.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function ledgerFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-replay-'));
  dirs.push(dir);
  const path = join(dir, 'audit.db');
  const db = new Database(path);
  migrate(db);
  db.close();
  return path;
}

describe('ReplayStore', () => {
  it('refuses a second claim inside the window, across a reopen (restart)', () => {
    const path = ledgerFile();
    let now = 1_000_000;
    const a = new ReplayStore({ path, now: () => now });
    expect(a.claim('hmac-sha256:k:aa', now + 60_000)).toBe(true);
    expect(a.claim('hmac-sha256:k:aa', now + 60_000)).toBe(false);
    a.close();
    a.close(); // idempotent
    now += 30_000;
    const b = new ReplayStore({ path, now: () => now });
    expect(b.claim('hmac-sha256:k:aa', now + 60_000)).toBe(false);
    expect(b.claim('hmac-sha256:k:bb', now + 60_000)).toBe(true);
    b.close();
  });

  it('lets an expired claim be taken again and prunes expired rows', () => {
    const path = ledgerFile();
    let now = 5_000;
    const s = new ReplayStore({ path, now: () => now, pruneEveryMs: 1000 });
    expect(s.claim('x', 6_000)).toBe(true);
    expect(s.claim('y', 100_000)).toBe(true);
    now = 6_000;
    expect(s.claim('x', 9_000)).toBe(true); // its window was over
    now = 20_000;
    expect(s.claim('z', 30_000)).toBe(true); // prunes x (9 000)
    expect(s.size).toBe(2);
    s.close();
  });

  it('gives a claim back on release (the delivery could not be recorded)', () => {
    const s = new ReplayStore({ path: ledgerFile(), now: () => 0 });
    expect(s.claim('r', 1000)).toBe(true);
    s.release('r');
    expect(s.claim('r', 1000)).toBe(true);
    s.close();
  });
});
