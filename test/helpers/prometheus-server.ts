import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-server.js';

/** Answer of `/api/v1/query`. */
export interface QueryAnswer {
  status: 'success' | 'error';
  error?: string;
  errorType?: string;
  data?: { resultType: string; result: unknown };
}

export interface PrometheusServer {
  url: string;
  /** The scrape job name, as it appears in `job` labels. */
  job: string;
  /** Instant query at "now" through the HTTP API. */
  query(expr: string): Promise<QueryAnswer>;
  /** Prometheus' stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** `host:port` targets scraped under one job. */
  targets: string[];
  job?: string;
  ruleFiles?: string[];
  /** Scrape and rule evaluation interval; default `1s`. */
  interval?: string;
}

/**
 * Starts a real `prometheus` (from PATH) on an ephemeral loopback port with its own config and
 * TSDB in a temp dir, scraping `targets`. Resolves once `/-/ready` answers.
 */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tw-prom-'));
  const job = options.job ?? 'tokenwatch';
  const interval = options.interval ?? '1s';
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    `rule_files: ${JSON.stringify(options.ruleFiles ?? [])}`,
    'scrape_configs:',
    `  - job_name: ${JSON.stringify(job)}`,
    '    static_configs:',
    `      - targets: ${JSON.stringify(options.targets)}`,
    '',
  ].join('\n');
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, config);
  const url = `http://127.0.0.1:${port}`;
  let out = '';
  const proc: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  proc.on('error', (err) => (out += `spawn error: ${err.message}\n`));

  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        proc.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        proc.kill('SIGTERM');
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with ${proc.exitCode}: ${out}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    job,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ query: expr }).toString(),
      });
      return (await res.json()) as QueryAnswer;
    },
    output: () => out,
    stop,
  };
}

/** Number of series (vector/matrix) or 1 for a scalar/string answer; 0 when empty or failed. */
export function resultSize(a: QueryAnswer): number {
  if (a.status !== 'success' || !a.data) return 0;
  const r = a.data.result;
  if (a.data.resultType === 'scalar' || a.data.resultType === 'string') return 1;
  return Array.isArray(r) ? r.length : 0;
}
