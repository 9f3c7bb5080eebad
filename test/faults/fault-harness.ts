import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  loadTrustedKey,
  defaultCheckpointLogPath,
  generatedSigningKeyPaths,
} from '../../src/audit/signing-keys.js';
import { verifyLedger, type VerifyReport } from '../../src/audit/verify.js';
import { listRecords, openReadOnly } from '../../src/audit/query.js';
import { DEFAULT_TOKEN_RULES } from '../helpers/app-harness.js';
import { freePort } from '../helpers/redis-server.js';

export interface Offered {
  written: number;
  deleted: number;
  expiring: number;
  failed: number;
}

export interface Load {
  stop(): Promise<Offered>;
}

const GENERATOR = join(import.meta.dirname, 'load-generator.mjs');
const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli.js');

/** A `tokenwatch serve` process of an HA drill (issue #20). */
export interface ServeInstance {
  id: string;
  port: number;
  db: string;
  child: ChildProcess;
  /** Its log (level warn, stdout and stderr), beside its database: for a drill's report. */
  log: string;
}

/**
 * Spawns `tokenwatch serve` (the built dist/cli.js) with `coordination.enabled` and instance id
 * `id`, in a directory of its own under `dir`: its own ledger, keys and checkpoint log
 * (generated beside its database), HTTP port and config. `redis` is the body of the `redis:`
 * section, `coordination` extra lines of the `coordination:` section (both YAML, indented by
 * two). Every instance of a drill shares `hmacKey` (fingerprints and marker tags must agree).
 * `cleanups` receives a SIGKILL of the process for the end of the test.
 */
export async function serveInstance(o: {
  dir: string;
  id: string;
  redis: string;
  coordination?: string;
  hmacKey: string;
  cleanups: (() => void | Promise<void>)[];
}): Promise<ServeInstance> {
  const port = await freePort();
  const own = join(o.dir, o.id);
  mkdirSync(own);
  const db = join(own, 'audit.db');
  const config = join(own, 'tokenwatch.yaml');
  writeFileSync(
    config,
    `redis:\n${o.redis}\naudit:\n  path: ${db}\nserver:\n  port: ${port}\nlog:\n  level: warn\n${DEFAULT_TOKEN_RULES}\ncoordination:\n  enabled: true\n  instanceId: ${o.id}\n${o.coordination ?? ''}\n`,
  );
  const log = join(own, 'serve.log');
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, [CLI, 'serve', '--config', config], {
    env: { ...process.env, TOKENWATCH_HMAC_KEY: o.hmacKey },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd); // the child holds its own copy
  o.cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { id: o.id, port, db, child, log };
}

/**
 * Starts the steady token load in a separate node process. With `log`, the generator writes the
 * keys of its acknowledged writes and deletions there (JSON) when it stops.
 */
export async function startLoad(
  target: { port?: number; cluster?: string[] },
  rate = 400,
  prefix = 'f',
  log?: string,
): Promise<Load> {
  const args = [GENERATOR, '--rate', String(rate), '--prefix', prefix];
  if (log) args.push('--log', log);
  if (target.cluster) args.push('--cluster', target.cluster.join(','));
  else args.push('--port', String(target.port));
  const child: ChildProcess = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (out.includes('"ready"')) {
        clearInterval(t);
        resolve();
      } else if (child.exitCode !== null) {
        clearInterval(t);
        reject(new Error('load generator exited'));
      }
    }, 10);
  });
  return {
    async stop() {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await exited;
      const line = out.trim().split('\n').at(-1) ?? '{}';
      return JSON.parse(line) as Offered;
    },
  };
}

const PREFIXES: [string, string][] = [
  ['oauth:access:', 'access_token'],
  ['oauth:refresh:', 'refresh_token'],
  ['session:', 'session'],
];

/** Token keys per kind in one Redis node (SCAN). */
export async function countKinds(client: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = { access_token: 0, refresh_token: 0, session: 0 };
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      const hit = PREFIXES.find(([p]) => k.startsWith(p) && k.length > p.length);
      if (hit) out[hit[1]] = (out[hit[1]] ?? 0) + 1;
    }
  } while (cursor !== '0');
  return out;
}

/** Token keys per kind across the current masters of a cluster (given their ports). */
export async function countClusterKinds(masterPorts: number[]): Promise<Record<string, number>> {
  const total: Record<string, number> = { access_token: 0, refresh_token: 0, session: 0 };
  for (const port of masterPorts) {
    const node = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      retryStrategy: () => null,
    });
    node.on('error', () => undefined);
    try {
      await node.connect();
      const c = await countKinds(node);
      for (const [k, v] of Object.entries(c)) total[k] = (total[k] ?? 0) + v;
    } finally {
      node.disconnect();
    }
  }
  return total;
}

export function diff(a: Record<string, number>, b: Record<string, number>): number {
  let d = 0;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
    d += Math.abs((a[k] ?? 0) - (b[k] ?? 0));
  return d;
}

/** Verifies the ledger file with the key pair and checkpoint log generated beside it. */
export async function verifyBeside(dbPath: string): Promise<VerifyReport> {
  return verifyLedger({
    dbPath,
    checkpointLog: defaultCheckpointLogPath(dbPath),
    trusted: [loadTrustedKey(generatedSigningKeyPaths(dbPath).publicPath)],
  });
}

export interface FaultRow {
  fault: string;
  offered: Offered;
  observedLive: number;
  recovered: number;
  gaps: number;
  finalDiff: number;
  verify: string;
}

/** Token records observed live vs recovered by reconciliation, and gaps, from the ledger file. */
export function ledgerCounts(dbPath: string): { live: number; recovered: number; gaps: number } {
  const db = openReadOnly(dbPath);
  try {
    const tokens = listRecords(db, { type: 'token.*' });
    const recovered = tokens.filter((r) => r.attrs.via === 'reconcile').length;
    const gaps =
      listRecords(db, { type: 'keyspace.gap' }).length +
      listRecords(db, { type: 'keyspace.flush' }).length;
    return { live: tokens.length - recovered, recovered, gaps };
  } finally {
    db.close();
  }
}

const REPORT = join(process.cwd(), 'test-artifacts', 'faults.md');

/** Appends one row to test-artifacts/faults.md and prints it. */
export function report(row: FaultRow): void {
  mkdirSync(join(process.cwd(), 'test-artifacts'), { recursive: true });
  if (!existsSync(REPORT)) {
    appendFileSync(
      REPORT,
      '| fault | offered by the load process | token records observed live | recovered by reconciliation | gap/flush records | final inventory difference | ledger verify |\n| --- | --- | --- | --- | --- | --- | --- |\n',
    );
  }
  const o = row.offered;
  const line = `| ${row.fault} | ${o.written} written, ${o.deleted} deleted, ${o.expiring} short-TTL | ${row.observedLive} | ${row.recovered} | ${row.gaps} | ${row.finalDiff} | ${row.verify} |`;
  appendFileSync(REPORT, `${line}\n`);
  process.stdout.write(`fault report: ${line}\n`);
}
