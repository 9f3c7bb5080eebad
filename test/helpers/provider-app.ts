import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { TokenwatchApp } from '../../src/app.js';
import type { AuditRecord } from '../../src/audit/record.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { DEFAULT_TOKEN_RULES, waitFor } from './app-harness.js';

/**
 * A TokenwatchApp for provider tests: real Redis, a SQLite file in `dir` (reusable across
 * restarts, so cursors, dedup markers and the HMAC key survive), `providers:` YAML as given.
 */
export interface ProviderApp {
  app: TokenwatchApp;
  dir: string;
  dbPath: string;
  logs(): string;
  /** Committed records of `type` (exact, or a prefix ending in `*`). */
  records(type: string): AuditRecord[];
  /** Current value of a metric series, 0 when absent. */
  metric(name: string, labels: Record<string, string>): Promise<number>;
  /** Stops the app; keeps `dir` unless `remove`. */
  stop(remove?: boolean): Promise<void>;
}

export interface ProviderAppOptions {
  redisUrl: string;
  /** YAML of the `providers:` section body (indented by the caller with 2 spaces). */
  providers?: string;
  /** Extra `server:` lines. */
  server?: string[];
  dir?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra top-level YAML (e.g. an `admin:` section). */
  yaml?: string;
}

export function startProviderApp(o: ProviderAppOptions): ProviderApp {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'tw-prov-'));
  const dbPath = join(dir, 'audit.db');
  const yaml = `
redis:
  url: ${o.redisUrl}
  recheckIntervalSeconds: 0.5
  infoIntervalSeconds: 0.5
audit:
  path: ${dbPath}
  maxBatchDelayMs: 5
server:
  port: 0
${(o.server ?? []).map((l) => `  ${l}`).join('\n')}
log:
  level: debug
${DEFAULT_TOKEN_RULES}
${o.providers ? `providers:\n${o.providers}` : ''}
${o.yaml ?? ''}
`;
  const config = parseConfig(yaml, o.env ?? {});
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const app = new TokenwatchApp({
    config,
    logger: createLogger(config.log.level, sink),
    defaultMetrics: false,
  });
  app.start();
  return {
    app,
    dir,
    dbPath,
    logs: () => text,
    records: (type) => app.ledger.list({ type }),
    async metric(name, labels) {
      const m = app.metrics.registry.getSingleMetric(name);
      if (!m) return 0;
      const { values } = await m.get();
      const hit = values.find((v) =>
        Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val),
      );
      return hit?.value ?? 0;
    },
    async stop(remove = true) {
      await app.stop('test');
      if (remove) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until the ledger committed everything queued (rejection records are fire-and-forget). */
export async function flushed(app: TokenwatchApp): Promise<void> {
  await waitFor(() => app.ledger.state().pending === 0, 5000, 'ledger flush');
}

/** Every `provider.*` record but `provider.rejected`, as `[provider, eventId]`. */
export function providerEventIds(app: TokenwatchApp): [string, string][] {
  return app.ledger
    .list({ type: 'provider.*' })
    .filter((r) => r.type !== 'provider.rejected')
    .map((r) => [String(r.attrs.provider), String(r.attrs.eventId)]);
}

/** Raw bytes of the SQLite file and its WAL (for "secret never stored" checks). */
export function databaseBytes(dbPath: string): Buffer {
  const wal = `${dbPath}-wal`;
  return Buffer.concat([
    readFileSync(dbPath),
    existsSync(wal) ? readFileSync(wal) : Buffer.alloc(0),
  ]);
}
