import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Soc2Report } from '../../src/compliance/report-types.js';
import {
  KEYCLOAK_SIGNATURE_HEADER,
  keycloakSignature,
} from '../../src/providers/keycloak-signature.js';
import { ROOT } from '../audit/dist.js';
import { freePort } from '../helpers/redis-server.js';
import { startServe, type Serve } from '../soak/soak-harness.js';

/**
 * A real `tokenwatch serve` on a temp ledger, as an operator runs it, plus the two doors a
 * ground-truth scenario needs: Auth0 Log Stream deliveries (the real wire format, with the
 * stream's Authorization token) and the admin API's record listing (loopback, no admin config).
 */

const CLI = join(ROOT, 'dist', 'cli.js');
export const AUTH0_TOKEN = 'auth0-log-stream-token-for-the-ground-truth';

export interface ServeHarness {
  dir: string;
  dbPath: string;
  port: number;
  serve: Serve | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Records of one type (or `prefix.*`), in seq order. */
  records(type: string): Promise<LedgerRow[]>;
  /** POSTs Auth0 log events; returns the HTTP status. */
  auth0(events: object[], token?: string): Promise<number>;
  /** POSTs one Keycloak event signed with `secret`; returns the HTTP status. */
  keycloak(event: object, secret?: string): Promise<number>;
  /** `tokenwatch report --format json` over [from, to). */
  report(from: number, to: number): Promise<Soc2Report>;
}

export interface LedgerRow {
  seq: number;
  time: number;
  type: string;
  kind: string | null;
  fingerprint: string | null;
  attrs: Record<string, unknown>;
}

export const KEYCLOAK_SECRET = 'keycloak-webhook-secret-for-the-ground-truth';

export async function serveHarness(o: {
  redisPort: number;
  /** Inner part of the `correlate:` flow mapping, e.g. `revocationSlaSeconds: 3`. */
  correlate: string;
}): Promise<ServeHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-truth-'));
  const dbPath = join(dir, 'tokenwatch.db');
  const configPath = join(dir, 'tokenwatch.yaml');
  const port = await freePort();
  writeFileSync(
    configPath,
    [
      `server: { host: 127.0.0.1, port: ${port} }`,
      'log: { level: warn }',
      `redis: { url: "redis://127.0.0.1:${o.redisPort}", recheckIntervalSeconds: 0.5, infoIntervalSeconds: 0.5 }`,
      'tokens:',
      "  - { kind: access_token, key: 'oauth:access:{token}', maxTtlSeconds: 3600, joins: { tokenId: token } }",
      "  - { kind: refresh_token, key: 'oauth:refresh:{token}', maxTtlSeconds: 2592000, joins: { tokenId: token } }",
      "  - { kind: session, key: 'session:{sid}', maxTtlSeconds: 86400, joins: { sessionId: sid } }",
      `audit: { path: "${dbPath}", checkpointIntervalSeconds: 1 }`,
      `correlate: { ${o.correlate} }`,
      `providers: { auth0: { token: ${AUTH0_TOKEN} }, keycloak: { secret: ${KEYCLOAK_SECRET} } }`,
      '',
    ].join('\n'),
  );
  const base = `http://127.0.0.1:${port}`;
  const h: ServeHarness = {
    dir,
    dbPath,
    port,
    serve: undefined,
    async start() {
      h.serve = await startServe(configPath, port);
    },
    async stop() {
      const s = h.serve;
      h.serve = undefined;
      if (s) await s.stop();
    },
    async records(type) {
      const out: LedgerRow[] = [];
      let after = 0;
      for (;;) {
        const r = await fetch(
          `${base}/v1/audit/records?type=${encodeURIComponent(type)}&afterSeq=${after}&limit=10000`,
        );
        if (r.status !== 200) throw new Error(`records ${type}: ${r.status} ${await r.text()}`);
        const body = (await r.json()) as { records: LedgerRow[]; nextAfterSeq?: number | null };
        out.push(...body.records);
        if (body.records.length < 10_000 || body.nextAfterSeq == null) return out;
        after = body.nextAfterSeq;
      }
    },
    async auth0(events, token = AUTH0_TOKEN) {
      const r = await fetch(`${base}/v1/providers/auth0/logs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(events),
      });
      await r.arrayBuffer();
      return r.status;
    },
    async keycloak(event, secret = KEYCLOAK_SECRET) {
      const body = JSON.stringify(event);
      const r = await fetch(`${base}/v1/providers/keycloak/events`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [KEYCLOAK_SIGNATURE_HEADER]: keycloakSignature(body, secret),
        },
        body,
      });
      await r.arrayBuffer();
      return r.status;
    },
    report: (from, to) => reportJson(dbPath, from, to),
  };
  return h;
}

/** Runs the CLI, as an auditor's engineer would. */
export function reportJson(dbPath: string, from: number, to: number): Promise<Soc2Report> {
  return new Promise((resolve, reject) => {
    const args = [CLI, 'report', '--db', dbPath, '--format', 'json'];
    args.push('--from', new Date(from).toISOString(), '--to', new Date(to).toISOString());
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`report exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as Soc2Report);
    });
  });
}

let logSeq = 0;

/** An Auth0 tenant log event (Log Stream shape, `data` as Auth0 sends it). */
export function auth0Event(
  type: string,
  details: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): { log_id: string; data: Record<string, unknown> } {
  logSeq += 1;
  const logId = `9002026${String(Date.now())}${String(logSeq).padStart(8, '0')}`;
  return {
    log_id: logId,
    data: {
      date: new Date().toISOString(),
      type,
      description: 'ground truth',
      client_id: 'Xb8Yt2Lm9Qp4Rs7Vw1Zn3Kc6Hd0Fg5Jj',
      client_name: 'Payments SPA',
      ip: '198.51.100.23',
      user_id: 'auth0|ground-truth-user',
      details,
      log_id: logId,
      ...extra,
    },
  };
}

let kcSeq = 0;

/** A Keycloak user event as the event-listener SPI posts it. */
export function keycloakEvent(
  type: string,
  sessionId: string,
  details: Record<string, string> = {},
): Record<string, unknown> {
  kcSeq += 1;
  return {
    id: `kc-ground-truth-${String(Date.now())}-${String(kcSeq)}`,
    time: Date.now(),
    type,
    realmId: 'payments',
    clientId: 'spa',
    userId: 'user-ground-truth',
    sessionId,
    details,
  };
}
