import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openReadOnly } from '../../src/audit/query.js';
import { readChainedAfter } from '../../src/audit/record-stream.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/** An OTLP AnyValue as the JSON encoding carries it (int64 as a string or a number). */
interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpLogRecord {
  timeUnixNano: string | number;
  severityNumber?: number;
  severityText?: string;
  body?: AnyValue;
  eventName?: string;
  attributes: { key: string; value: AnyValue }[];
}
interface LogsRequest {
  resourceLogs: {
    resource: { attributes: { key: string; value: AnyValue }[] };
    scopeLogs: { scope: { name: string; version?: string }; logRecords: OtlpLogRecord[] }[];
  }[];
}

/** A flat view of one received log record. */
type Got = Record<string, string | number | boolean | undefined>;

const valueOf = (v: AnyValue): string | number | boolean | undefined =>
  v.stringValue ??
  (v.intValue !== undefined ? Number(v.intValue) : undefined) ??
  v.doubleValue ??
  v.boolValue;

/**
 * A loopback OTLP/HTTP logs receiver speaking the JSON encoding of
 * opentelemetry-proto's ExportLogsServiceRequest. `down()` closes the listening socket (the
 * collector is gone: connection refused), `up()` listens on the same port again. `respond`
 * gives the ExportLogsServiceResponse of the n-th request (1-based; default `{}`).
 */
async function startReceiver(respond: (request: number) => unknown = () => ({})): Promise<{
  url: string;
  logs: Got[];
  raw: string[];
  requests: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}> {
  const logs: Got[] = [];
  const raw: string[] = [];
  let requests = 0;
  const read = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    read(req)
      .then((text) => {
        if (req.method !== 'POST' || req.url !== '/v1/logs') {
          res.writeHead(404).end();
          return;
        }
        if (req.headers['content-type'] !== 'application/json') {
          res.writeHead(415).end();
          return;
        }
        requests++;
        raw.push(text);
        const body = JSON.parse(text) as LogsRequest;
        for (const rl of body.resourceLogs) {
          const service = rl.resource.attributes.find((a) => a.key === 'service.name');
          for (const sl of rl.scopeLogs) {
            for (const lr of sl.logRecords) {
              const got: Got = {
                'service.name': service ? valueOf(service.value) : undefined,
                scope: sl.scope.name,
                severityNumber: lr.severityNumber,
                severityText: lr.severityText,
                body: lr.body ? valueOf(lr.body) : undefined,
                eventName: lr.eventName,
                timeUnixNano: String(lr.timeUnixNano),
              };
              for (const a of lr.attributes) got[a.key] = valueOf(a.value);
              logs.push(got);
            }
          }
        }
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify(respond(requests)));
      })
      .catch(() => res.writeHead(400).end());
  };
  let server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const closeServer = (): Promise<void> =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return {
    url: `http://127.0.0.1:${port}/v1/logs`,
    logs,
    raw,
    get requests() {
      return requests;
    },
    down: closeServer,
    async up() {
      server = createServer(handler);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
    },
    close: closeServer,
  };
}

const seqsOf = (logs: Got[]): number[] =>
  logs.map((l) => l['tokenwatch.audit.seq']).filter((s): s is number => typeof s === 'number');

function duplicates(seqs: number[]): number[] {
  const seen = new Set<number>();
  const dup: number[] = [];
  for (const s of seqs) {
    if (seen.has(s)) dup.push(s);
    seen.add(s);
  }
  return dup;
}

/** Every seq stored in the ledger file, read after the app stopped. */
function ledgerSeqs(dbPath: string): number[] {
  const db = openReadOnly(dbPath);
  try {
    return readChainedAfter(db, 0, 1_000_000).map((r) => r.seq);
  } finally {
    db.close();
  }
}

/**
 * `drainSeconds` bounds how long stop() keeps exporting. The tests that compare the stream with
 * the ledger after a stop need the whole drain, also on a loaded CI machine (two seconds were
 * once too few for 45 records in batches of 7), so their bound is generous; it is a limit, not
 * a wait.
 */
const logsYaml = (url: string, drainSeconds = 20): string =>
  [
    'otel:',
    '  logs:',
    `    endpoint: ${url}`,
    '    batchSize: 7',
    '    retryMaxSeconds: 0.2',
    `    drainTimeoutSeconds: ${drainSeconds}`,
    '    timeoutSeconds: 2',
  ].join('\n');

let redis: RedisServer;
let h: Harness | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await h?.app.stop();
  h = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
afterAll(async () => {
  await redis.stop();
});

describe('the audit stream as OTLP logs (otel.logs)', () => {
  it('delivers every committed record exactly once across a collector outage and a restart', async () => {
    const rx = await startReceiver();
    const dir = mkdtempSync(join(tmpdir(), 'tw-otlp-logs-'));
    dirs.push(dir);
    try {
      const secret = 'otlpLogsRawAccessToken7781';
      const c = redis.client();

      // Run 1: the collector is up, then goes away while records keep committing.
      h = startApp(redis.url, { dir, yaml: logsYaml(rx.url) });
      let app = h.app;
      await app.whenReady();
      await c.set(`oauth:access:${secret}`, 'v', 'EX', 600);
      for (let i = 0; i < 20; i++) await c.set(`oauth:refresh:up-${i}`, 'v', 'EX', 600);
      await app.settle();
      await waitFor(
        () => app.ledger.lastSeq > 20 && app.auditLogs?.lag === 0,
        15_000,
        'the first records exported',
      );
      const beforeOutage = rx.logs.length;
      expect(beforeOutage).toBe(app.ledger.lastSeq);

      await rx.down();
      for (let i = 0; i < 30; i++) await c.set(`oauth:access:down-${i}`, 'v', 'EX', 600);
      await c.del('oauth:refresh:up-3');
      await app.settle();
      await waitFor(
        async () =>
          /tokenwatch_otlp_logs_export_failures_total [1-9]/.test(
            await app.metrics.registry.metrics(),
          ) && (app.auditLogs?.lag ?? 0) >= 31,
        15_000,
        'failed exports while the collector is down',
      );
      // The lag metric counts what the collector has not acknowledged.
      const text = await app.metrics.registry.metrics();
      const lag = Number(/tokenwatch_otlp_logs_lag_records (\d+)/.exec(text)?.[1]);
      expect(lag).toBeGreaterThanOrEqual(31);
      expect(rx.logs.length).toBe(beforeOutage);

      // Stop while the collector is still down: nothing can be drained, the cursor stays behind.
      await app.stop('test');
      h = undefined;
      await rx.up();

      // Run 2 on the same ledger: resumes after the last acknowledged record.
      for (let i = 0; i < 5; i++) await c.set(`session:while-stopped-${i}`, 'v', 'EX', 600);
      h = startApp(redis.url, { dir, yaml: logsYaml(rx.url) });
      app = h.app;
      await app.whenReady();
      const restartedAt = app.ledger.lastSeq;
      await c.set('oauth:access:after-restart', 'v', 'EX', 600);
      // The write reaches the ledger and the collector while the collector is up again.
      await waitFor(
        () =>
          app.auditLogs?.lag === 0 &&
          rx.logs.some(
            (l) =>
              l['tokenwatch.audit.type'] === 'token.written' &&
              Number(l['tokenwatch.audit.seq']) > restartedAt,
          ),
        15_000,
        'the backlog and the new write exported',
      );
      await app.stop('test'); // drains system.stopped and the shutdown records too
      h = undefined;

      const stored = ledgerSeqs(join(dir, 'audit.db'));
      const got = seqsOf(rx.logs);
      expect(duplicates(got)).toEqual([]);
      expect([...got].sort((a, b) => a - b)).toEqual(stored);
      // In seq order on the wire, too.
      expect(got).toEqual(stored);

      // Never a raw token: only its fingerprint.
      expect(rx.raw.join('\n')).not.toContain(secret);
      const written = rx.logs.find(
        (l) =>
          l['tokenwatch.audit.type'] === 'token.written' &&
          l['tokenwatch.audit.kind'] === 'access_token',
      );
      expect(written?.['tokenwatch.audit.fingerprint']).toMatch(/^hmac-sha256:[^:]+:[0-9a-f]{64}$/);
      expect(written?.['tokenwatch.audit.chain']).toMatch(/^[0-9a-f]{64}$/);
      expect(written?.['ocsf.class_uid']).toBe(6003);
      expect(written?.['ocsf.activity_id']).toBe(1);
      expect(written?.['service.name']).toBe('tokenwatch');
      expect(written?.scope).toBe('tokenwatch.audit');
      expect(written?.eventName).toBe('tokenwatch.audit.token.written');
      const deleted = rx.logs.find((l) => l['tokenwatch.audit.type'] === 'token.deleted');
      expect(deleted?.['ocsf.activity_id']).toBe(4);
      // The chain hash forwarded equals the ledger's.
      const db = openReadOnly(join(dir, 'audit.db'));
      try {
        const row = readChainedAfter(db, Number(written?.['tokenwatch.audit.seq']) - 1, 1)[0];
        expect(written?.['tokenwatch.audit.chain']).toBe(row?.chain);
        expect(written?.['tokenwatch.audit.attrs']).toBe(row?.attrs);
      } finally {
        db.close();
      }
      // The restart's blind spot and start/stop records are in the stream like any other.
      const types = new Set(rx.logs.map((l) => l['tokenwatch.audit.type']));
      for (const t of ['ledger.genesis', 'system.started', 'system.stopped', 'keyspace.gap'])
        expect(types).toContain(t);
    } finally {
      await rx.close();
    }
  });

  it('refuses a cursor that does not match the ledger: re-sends rather than skips', async () => {
    const rx = await startReceiver();
    const dir = mkdtempSync(join(tmpdir(), 'tw-otlp-logs-'));
    dirs.push(dir);
    try {
      h = startApp(redis.url, { dir, yaml: logsYaml(rx.url) });
      let app = h.app;
      await app.whenReady();
      await app.settle(); // the start's reconciliation of earlier tests' keys is recorded
      await waitFor(() => app.auditLogs?.lag === 0 && rx.logs.length > 0, 15_000, 'exported');
      await app.stop('test');
      h = undefined;
      const firstRun = rx.logs.length;
      const stored = ledgerSeqs(join(dir, 'audit.db'));
      expect(seqsOf(rx.logs)).toEqual(stored);

      // An attacker (or a restored backup) claims far more was exported than really was.
      const cursorFile = join(dir, 'otlp-logs.cursor.json');
      const ledgerId = rx.logs[0]?.['tokenwatch.ledger.id'];
      writeFileSync(
        cursorFile,
        JSON.stringify({ v: 1, ledgerId, seq: stored.at(-1), chain: '0'.repeat(64) }),
      );
      h = startApp(redis.url, { dir, yaml: logsYaml(rx.url) });
      app = h.app;
      await app.whenReady();
      await waitFor(() => app.auditLogs?.lag === 0, 15_000, 're-exported');
      expect(h.logs()).toContain('chain hash differs from the ledger');
      // Everything from seq 1 went out again: duplicates, never a hole.
      const second = seqsOf(rx.logs.slice(firstRun));
      expect(second.slice(0, stored.length)).toEqual(stored);

      // A cursor from another ledger is refused the same way.
      await app.stop('test');
      h = undefined;
      writeFileSync(
        cursorFile,
        JSON.stringify({ v: 1, ledgerId: 'another-ledger', seq: 1, chain: 'a'.repeat(64) }),
      );
      const before = rx.logs.length;
      h = startApp(redis.url, { dir, yaml: logsYaml(rx.url) });
      await h.app.whenReady();
      await waitFor(() => h?.app.auditLogs?.lag === 0, 15_000, 're-exported again');
      expect(h.logs()).toContain('cursor of another ledger');
      expect(seqsOf(rx.logs.slice(before))[0]).toBe(1);
    } finally {
      await rx.close();
    }
  });

  it('a collector that accepts and never answers delays shutdown by the export timeout at most', async () => {
    // Holds every request open: the worst collector for a shutdown.
    const held: ServerResponse[] = [];
    const server = createServer((_req, res) => held.push(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logs`;
    const dir = mkdtempSync(join(tmpdir(), 'tw-otlp-logs-'));
    dirs.push(dir);
    try {
      h = startApp(redis.url, { dir, yaml: logsYaml(url, 2) });
      const app = h.app;
      await app.whenReady();
      await waitFor(() => held.length > 0, 15_000, 'an export request held open');
      const started = Date.now();
      await app.stop('test');
      h = undefined;
      // timeoutSeconds 2 bounds the export in flight; drainTimeoutSeconds 2 stops new ones.
      expect(Date.now() - started).toBeLessThan(8_000);
      // Nothing was acknowledged, so the next start sends everything again: no cursor moved.
      expect(existsSync(join(dir, 'otlp-logs.cursor.json'))).toBe(false);
    } finally {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('stop() waits for an export in flight: the cursor covers all the collector acknowledged', async () => {
    // Answers every request after 1.5 s, longer than the drain timeout below.
    const seqs: number[] = [];
    let inFlight = 0;
    const server = createServer((req, res) => {
      inFlight++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        setTimeout(() => {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as LogsRequest;
          for (const rl of body.resourceLogs)
            for (const sl of rl.scopeLogs)
              for (const lr of sl.logRecords) {
                const a = lr.attributes.find((x) => x.key === 'tokenwatch.audit.seq');
                if (a) seqs.push(Number(valueOf(a.value)));
              }
          inFlight--;
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        }, 1500);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logs`;
    const dir = mkdtempSync(join(tmpdir(), 'tw-otlp-logs-'));
    dirs.push(dir);
    try {
      const yaml = logsYaml(url, 0.2);
      h = startApp(redis.url, {
        dir,
        yaml: yaml.replace('timeoutSeconds: 2', 'timeoutSeconds: 5'),
      });
      const app = h.app;
      await app.whenReady();
      await waitFor(() => inFlight > 0, 15_000, 'an export in flight');
      await app.stop('test');
      h = undefined;
      expect(inFlight).toBe(0);
      expect(seqs.length).toBeGreaterThan(0);
      const cursor = JSON.parse(readFileSync(join(dir, 'otlp-logs.cursor.json'), 'utf8')) as {
        seq: number;
      };
      expect(cursor.seq).toBe(Math.max(...seqs));
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('counts and reports records a collector rejects in a partial success, and does not resend them', async () => {
    // The second request is accepted but two of its records are rejected (OTLP/HTTP partial
    // success; rejected_log_records is an int64, a string in the JSON encoding).
    const rx = await startReceiver((n) =>
      n === 2
        ? { partialSuccess: { rejectedLogRecords: '2', errorMessage: 'attribute value too long' } }
        : {},
    );
    const dir = mkdtempSync(join(tmpdir(), 'tw-otlp-logs-'));
    dirs.push(dir);
    try {
      h = startApp(redis.url, { dir, yaml: logsYaml(rx.url) });
      const app = h.app;
      await app.whenReady();
      const c = redis.client();
      for (let i = 0; i < 20; i++) await c.set(`oauth:refresh:ps-${i}`, 'v', 'EX', 600);
      await app.settle();
      await waitFor(
        () => rx.requests >= 3 && app.auditLogs?.lag === 0,
        15_000,
        'three requests, all acknowledged',
      );
      const text = await app.metrics.registry.metrics();
      const metric = (name: string): number =>
        Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
      expect(metric('tokenwatch_otlp_logs_rejected_records_total')).toBe(2);
      // Accepted + rejected = every record sent, each sent once: the batch is not retried.
      const got = seqsOf(rx.logs);
      expect(duplicates(got)).toEqual([]);
      expect(metric('tokenwatch_otlp_logs_exported_records_total') + 2).toBe(got.length);
      // The warning names the batch's seq range and the collector's message.
      const second = seqsOf(
        (JSON.parse(rx.raw[1] ?? '{}') as LogsRequest).resourceLogs.flatMap((rl) =>
          rl.scopeLogs.flatMap((sl) =>
            sl.logRecords.map((lr) => {
              const g: Got = {};
              for (const a of lr.attributes) g[a.key] = valueOf(a.value);
              return g;
            }),
          ),
        ),
      );
      const warning = h
        .logs()
        .split('\n')
        .find((l) => l.includes('partial success'));
      expect(warning).toBeDefined();
      const w = JSON.parse(warning ?? '{}') as Record<string, unknown>;
      expect(w).toMatchObject({
        rejected: 2,
        fromSeq: second[0],
        toSeq: second.at(-1),
        collectorMessage: 'attribute value too long',
      });
    } finally {
      await rx.close();
    }
  });

  it('is off without otel.logs: no exporter, no lag metric', async () => {
    h = startApp(redis.url);
    expect(h.app.auditLogs).toBeUndefined();
    expect(await h.app.metrics.registry.metrics()).not.toContain(
      'tokenwatch_otlp_logs_lag_records',
    );
    await h.stop();
    h = undefined;
  });
});
