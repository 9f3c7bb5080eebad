import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { TokenwatchApp } from '../app.js';
import { parseConfig } from '../config/load.js';
import { serveReducingGc, serveV8Flags } from './serve-runtime.js';
import { createLogger } from '../logger.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const RULES = `
tokens:
  - { kind: access_token, key: "oauth:access:{token}", maxTtlSeconds: 86400 }
  - { kind: refresh_token, key: "oauth:refresh:{token}" }
  - { kind: session, key: "session:{sid}" }
`;

export interface AppUnderTest {
  app: TokenwatchApp;
  dir: string;
  close(): Promise<void>;
}

/**
 * The service as the benchmarks run it: the rules above, a ledger in a temp dir, logs dropped.
 * `audit`: more keys of the audit section, as YAML flow-map entries (`maxBatchDelayMs: 5`).
 */
export function startTokenwatch(redisUrl: string, extra = '', audit = ''): AppUnderTest {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-app-'));
  const config = parseConfig(
    `redis: { url: "${redisUrl}" }\naudit: { path: ${join(dir, 'audit.db')}${audit ? `, ${audit}` : ''} }\nserver: { port: 0 }\n${RULES}\n${extra}`,
  );
  const quiet = new Writable({ write: (_c, _e, cb) => cb() });
  const gc = serveReducingGc();
  const setV8Flag = serveV8Flags();
  const app = new TokenwatchApp({
    config,
    logger: createLogger('warn', quiet),
    defaultMetrics: false,
    // What serve gives the app (src/main.ts): a large baseline is followed by a memory release.
    ...(gc === undefined ? {} : { reducingGc: gc }),
    ...(setV8Flag === undefined ? {} : { setV8Flag }),
  });
  app.start();
  return {
    app,
    dir,
    async close() {
      await app.stop('bench');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `value()` has not changed for `quietMs`. */
export async function untilStable(
  value: () => number,
  quietMs = 1500,
  maxMs = 120_000,
): Promise<void> {
  let last = -1;
  let since = Date.now();
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const v = value();
    if (v !== last) {
      last = v;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    await sleep(100);
  }
}
