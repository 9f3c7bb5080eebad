import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { TokenwatchApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import type { ReducingGc } from '../../src/runtime/memory-release.js';

export interface Harness {
  app: TokenwatchApp;
  dir: string;
  dbPath: string;
  /** Everything the service logged, as text. */
  logs(): string;
  stop(): Promise<void>;
}

export const DEFAULT_TOKEN_RULES = `
tokens:
  - kind: access_token
    key: 'oauth:access:{token}'
    maxTtlSeconds: 3600
  - kind: refresh_token
    key: 'oauth:refresh:{token}'
  - kind: session
    key: 'session:{sid}'
  - kind: tenant_refresh
    key: 'tenant:{tenant}:rt:{token}'
  - kind: grant
    key: 'grant:{sub}:{scope}'
`;

/** A TokenwatchApp on a temp SQLite file, watching `redisUrl`, with its logs captured. */
export interface StartOptions {
  /** Extra YAML lines inside the `redis:` section (each `key: value`). */
  redis?: string[];
  /** Extra YAML lines inside the `audit:` section (each `key: value`). */
  audit?: string[];
  /** Extra top-level YAML. */
  yaml?: string;
  env?: NodeJS.ProcessEnv;
  /** Injectable clock (fault tests step it backwards). */
  now?: () => number;
  /** Reuse this directory (restart on the same ledger). */
  dir?: string;
  /** What serve hands over for runtime.releaseMemoryAfterScan. */
  reducingGc?: ReducingGc;
  /** What serve hands over as `setV8Flag` (tests record the flags, never set them). */
  setV8Flag?: (flag: string) => void;
}

export function startApp(redisUrl: string, options: StartOptions = {}): Harness {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'tw-app-'));
  const dbPath = join(dir, 'audit.db');
  const yaml = `
redis:
  url: ${redisUrl}
  recheckIntervalSeconds: 0.5
  infoIntervalSeconds: 0.5
${(options.redis ?? []).map((l) => `  ${l}`).join('\n')}
audit:
  path: ${dbPath}
  maxBatchDelayMs: 5
${(options.audit ?? []).map((l) => `  ${l}`).join('\n')}
server:
  port: 0
log:
  level: debug
${DEFAULT_TOKEN_RULES}
${options.yaml ?? ''}`;
  const config = parseConfig(yaml, options.env ?? {});
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const logger = createLogger(config.log.level, sink);
  const app = new TokenwatchApp({
    config,
    logger,
    defaultMetrics: false,
    now: options.now,
    ...(options.reducingGc ? { reducingGc: options.reducingGc } : {}),
    ...(options.setV8Flag ? { setV8Flag: options.setV8Flag } : {}),
  });
  app.start();
  return {
    app,
    dir,
    dbPath,
    logs: () => text,
    async stop() {
      await app.stop('test');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Poll until `check` returns true (or throw after `timeoutMs`). */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
