import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

import type { TokenwatchApp } from '../../src/app.js';
import { flushed, databaseBytes } from '../helpers/provider-app.js';

/**
 * Canary leak checks of the adversarial suite (issue #17): values an attacker sends are unique
 * random strings; after the attack, every place tokenwatch keeps text is searched for them:
 * the SQLite file and its WAL, the logs, `/metrics`, and evidence bundles in every export format.
 */

/** A unique value to plant in a request (letters and digits: the same bytes in any encoding). */
export function canary(tag: string): string {
  return `cny${tag}${randomBytes(10).toString('hex')}`;
}

/** Where each canary was found (empty: nowhere). */
export interface LeakReport {
  db: string[];
  logs: string[];
  metrics: string[];
  exports: string[];
}

/** What {@link findLeaks} searches. */
export interface LeakScope {
  app: TokenwatchApp;
  dbPath: string;
  logs: () => string;
  /** Base URL of the listening app (`/metrics` is fetched over a real socket). */
  base: string;
  /** Headers for the admin API (exports) and /metrics. */
  adminHeaders?: Record<string, string>;
}

/**
 * Exports the last hour in csv, jsonl and ocsf through the admin API, then searches the DB + WAL,
 * logs, /metrics and every bundle file for each canary.
 */
export async function findLeaks(
  scope: LeakScope,
  canaries: readonly string[],
): Promise<LeakReport> {
  await flushed(scope.app);
  const headers = { 'content-type': 'application/json', ...(scope.adminHeaders ?? {}) };
  const bundleTexts: string[] = [];
  for (const format of ['csv', 'jsonl', 'ocsf']) {
    const res = await fetch(`${scope.base}/v1/exports`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        from: new Date(Date.now() - 3_600_000).toISOString(),
        to: new Date(Date.now() + 1000).toISOString(),
        format,
      }),
    });
    expect(res.status, `export ${format}`).toBe(201);
    const { id, files } = (await res.json()) as { id: string; files: string[] };
    expect(
      files.some((f) => f.startsWith('records-')),
      `${format} has record files`,
    ).toBe(true);
    const dir = join(scope.app.config.admin?.exportDir ?? join(scope.dbPath, '..', 'exports'), id);
    for (const f of readdirSync(dir)) bundleTexts.push(readFileSync(join(dir, f), 'latin1'));
  }
  await flushed(scope.app);
  const metrics = await (
    await fetch(`${scope.base}/metrics`, { headers: scope.adminHeaders ?? {} })
  ).text();
  expect(metrics).toContain('tokenwatch_');
  const db = databaseBytes(scope.dbPath).toString('latin1');
  const logs = scope.logs();
  const bundles = bundleTexts.join('\n');
  const hits = (text: string) => canaries.filter((c) => text.includes(c));
  return { db: hits(db), logs: hits(logs), metrics: hits(metrics), exports: hits(bundles) };
}

/**
 * Asserts no canary is anywhere. `control` is a value the caller had legitimately recorded (an
 * allowed admin request's known query member): it must be found in the DB and in every export,
 * so the search itself is shown to work and the zero hits are not vacuous.
 */
export async function expectNoLeaks(
  scope: LeakScope,
  canaries: readonly string[],
  control: string,
): Promise<void> {
  expect(canaries.length).toBeGreaterThan(0);
  const report = await findLeaks(scope, [...canaries, control]);
  expect(report.db, 'the positive control is in the database').toContain(control);
  expect(report.exports, 'the positive control is in the exports').toContain(control);
  const strip = (l: string[]) => l.filter((c) => c !== control);
  expect({
    db: strip(report.db),
    logs: strip(report.logs),
    metrics: strip(report.metrics),
    exports: strip(report.exports),
  }).toEqual({ db: [], logs: [], metrics: [], exports: [] });
}

/**
 * Records a positive control: an allowed admin request whose known `rule` member carries
 * `control` (kept verbatim in its admin.access record, by design). The reply is 400 (no such
 * rule) after the access was recorded.
 */
export async function recordControl(
  base: string,
  control: string,
  headers: Record<string, string> = {},
): Promise<void> {
  const res = await fetch(`${base}/v1/findings?rule=${control}`, { headers });
  expect(res.status).toBe(400);
}
