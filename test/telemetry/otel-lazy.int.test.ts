import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { DIST_TIMEOUT_MS, ensureDist, ROOT } from '../audit/dist.js';

beforeAll(() => ensureDist(), DIST_TIMEOUT_MS);

/**
 * The OpenTelemetry SDK (~24 MB of RSS) is loaded only by a process that exports: checked on the
 * compiled service in a fresh process, by watching what the module loader resolves.
 */
function loaded(config: string): { sdk: string[]; started: boolean } {
  const app = pathToFileURL(join(ROOT, 'dist/telemetry/otel.js')).href;
  const script = `
    import { registerHooks } from 'node:module';
    const sdk = [];
    registerHooks({
      resolve(spec, ctx, next) {
        const r = next(spec, ctx);
        if (/@opentelemetry\\/(sdk-node|sdk-trace|exporter-)/.test(r.url) || r.url.endsWith('/otel-sdk.js')) sdk.push(spec);
        return r;
      },
    });
    await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/app.js')).href)});
    const { Telemetry } = await import(${JSON.stringify(app)});
    const { Registry } = await import('prom-client');
    const { pino } = await import('pino');
    const t = new Telemetry({ config: ${config}, registry: new Registry(), logger: pino({ level: 'silent' }), env: {} });
    t.start();
    await t.flush();
    const started = t.tracing.enabled;
    await t.shutdown();
    console.log(JSON.stringify({ sdk, started }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as {
    sdk: string[];
    started: boolean;
  };
}

describe('OpenTelemetry SDK loading', () => {
  it('a service that exports nothing never loads the SDK', () => {
    const r = loaded('{}');
    expect(r).toEqual({ sdk: [], started: false });
  });

  it('a service that exports loads it when it starts, and traces', () => {
    const r = loaded(`{ tracesEndpoint: 'http://127.0.0.1:9/v1/traces' }`);
    expect(r.started).toBe(true);
    expect(r.sdk).toContain('./otel-sdk.js');
    expect(r.sdk).toContain('@opentelemetry/sdk-node');
  });
});
