import { setFlagsFromString } from 'node:v8';
import type { Logger } from 'pino';
import { TokenwatchApp } from './app.js';
import { loadConfig } from './config/load.js';
import { createLogger } from './logger.js';
import { applyHeapGrowth } from './runtime/heap-growth.js';
import { memoryReducingGc } from './runtime/memory-release.js';

/**
 * `tokenwatch serve`: the only place that reads the environment, opens connections and
 * handles signals. SIGTERM/SIGINT drain the watchers, flush the audit batch with
 * `system.stopped` as the last record, close connections and exit 0.
 */
export async function serve(
  configFile: string | undefined,
  opts: { acceptDiscontinuity?: boolean } = {},
): Promise<void> {
  const { config, source, warnings } = loadConfig({ file: configFile, env: process.env });
  const logger: Logger = createLogger(config.log.level);
  for (const w of warnings) logger.warn(w);
  const heapFlag = applyHeapGrowth(config.runtime.heapGrowthPercent);
  logger.info(
    { config: source, audit: config.audit.path, v8: heapFlag ?? 'default heap growth' },
    'tokenwatch starting',
  );
  const app = new TokenwatchApp({
    config,
    logger,
    acceptDiscontinuity: opts.acceptDiscontinuity === true,
    ...(config.runtime.releaseMemoryAfterScan === null ? {} : { reducingGc: memoryReducingGc() }),
    setV8Flag: setFlagsFromString,
  });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    app
      .stop(signal)
      .then(() => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  app.start();
  const address = await app.listen();
  logger.info({ address }, 'listening: /metrics /healthz /readyz');
}
