import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { describeDamage, ledgerDamage, refuseDamaged } from '../audit/ledger-check.js';
import { openLedgerStore, type LedgerStore } from '../audit/store/ledger-store.js';
import type { SigningKey, TrustedKey } from '../audit/signing-keys.js';
import {
  MANIFEST_FILE,
  SIGNATURE_FILE,
  manifestSignatureValid,
  parseManifest,
} from '../compliance/bundle-manifest.js';
import { exportBundle } from '../compliance/export-bundle.js';
import type { Policy } from '../compliance/policy-record.js';
import { buildReport } from '../compliance/report-data.js';
import { REPORT_CSP, renderReportHtml } from '../compliance/report-html.js';
import { EXPORT_FORMATS, type ExportFormat } from '../compliance/row-codec.js';
import { TokenwatchError } from '../errors.js';
import type { AdminAuth } from './admin-auth.js';
import { EXPORT_ID, openBundleFile } from './bundle-files.js';

export interface AdminRoutesDeps {
  auth: AdminAuth;
  /** The ledger file (read through a read-only connection per request). */
  dbPath: string;
  /** The external checkpoint log (`audit.checkpointLog`): the report's integrity anchor. */
  checkpointLog?: string;
  /** Where the signing key was read (a key beside the database anchors nothing). */
  signingKeyPath?: string;
  /** Signs export manifests; its public half verifies checkpoints in reports. */
  signingKey: SigningKey;
  /** Where bundles are written, one directory per export. */
  exportDir: string;
  /** Longest period a report or export may cover, days. */
  maxPeriodDays: number;
  /**
   * Overrides, for the whole period, the policy reports read from the ledger's `config.policy`
   * records (docs/compliance.md#policy-in-force); omit it to judge by the recorded policy.
   */
  policy?: Policy;
  /** Signs a checkpoint now when records are unsealed (an export's range must be sealed). */
  seal: () => void;
  now: () => number;
  logger: Logger;
}

const DAY_MS = 86_400_000;
const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json',
  jsonl: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  sig: 'text/plain; charset=utf-8',
};

function bad(message: string): TokenwatchError {
  return new TokenwatchError('ERR_BAD_REQUEST', message);
}

function isoParam(v: unknown, name: string): number {
  if (typeof v !== 'string' || v === '') throw bad(`${name} is required (ISO 8601)`);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw bad(`${name} must be an ISO 8601 time`);
  return t;
}

function period(q: Record<string, unknown>, maxDays: number): { from: number; to: number } {
  const from = isoParam(q.from, 'from');
  const to = isoParam(q.to, 'to');
  if (!(from < to)) throw bad('from must be before to');
  if (to - from > maxDays * DAY_MS) throw bad(`the period may cover at most ${maxDays} days`);
  return { from, to };
}

function withReader<T>(path: string, fn: (store: LedgerStore) => Promise<T> | T): Promise<T> {
  const store = openLedgerStore(path);
  return Promise.resolve()
    .then(() => fn(store))
    .finally(() => store.close());
}

/**
 * The admin API besides /v1/findings (docs/compliance.md#admin-api), every route behind the
 * admin guard:
 * - `GET /v1/reports/soc2?from=&to=&format=html|json`: the SOC 2 report;
 * - `GET /v1/audit/records?type=&from=&to=&afterSeq=&limit=`: a page of records, seq order;
 * - `POST /v1/exports` `{from, to, format}`: writes an evidence bundle, returns its manifest;
 *   `GET /v1/exports`: the bundles written; `GET /v1/exports/:id/:file`: one file of a bundle.
 */
export function registerAdminRoutes(app: FastifyInstance, deps: AdminRoutesDeps): void {
  const { auth } = deps;
  const trusted: TrustedKey[] = [
    {
      keyId: deps.signingKey.keyId,
      publicKey: deps.signingKey.publicKey,
      source: deps.signingKeyPath ?? 'audit.signingKey',
    },
  ];

  // Every admin route refuses a missing/malformed credential (and one in the query string) in
  // onRequest: before a body is read, before any work.
  const pre = (route: 'reports' | 'audit_records' | 'exports') => ({
    onRequest: auth.precheck(route),
  });

  app.get('/v1/reports/soc2', pre('reports'), async (request, reply) => {
    await auth.check('reports', request);
    const q = request.query as Record<string, unknown>;
    const format = q.format ?? 'html';
    if (format !== 'html' && format !== 'json') throw bad('format must be html or json');
    const { from, to } = period(q, deps.maxPeriodDays);
    if (to > deps.now() - 1000) deps.seal(); // a period up to now: seal its tail first
    const damage = await ledgerDamage({
      dbPath: deps.dbPath,
      checkpointLog: deps.checkpointLog,
      trusted,
      from,
    });
    const report = await withReader(deps.dbPath, (store) =>
      buildReport({
        store,
        from,
        to,
        trusted,
        now: deps.now,
        policy: deps.policy,
        ledgerDamage: damage.map(describeDamage),
        anchors: { dbPath: deps.dbPath, checkpointLog: deps.checkpointLog },
      }),
    );
    void reply.header('cache-control', 'no-store');
    if (format === 'json') return report;
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', REPORT_CSP)
      .header('x-content-type-options', 'nosniff')
      .send(renderReportHtml(report));
  });

  app.get('/v1/audit/records', pre('audit_records'), async (request) => {
    await auth.check('audit_records', request);
    const q = request.query as Record<string, string | undefined>;
    const limit = q.limit === undefined ? 1000 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
      throw bad('limit must be 1..10000');
    const afterSeq = q.afterSeq === undefined ? 0 : Number(q.afterSeq);
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0)
      throw bad('afterSeq must be a whole number');
    const since = q.from === undefined ? undefined : isoParam(q.from, 'from');
    const until = q.to === undefined ? undefined : isoParam(q.to, 'to');
    if (q.type !== undefined && !/^[a-z_]+(\.[a-z_]*)?\*?$/.test(q.type))
      throw bad('type must be a record type or a prefix ending in *');
    const rows = await withReader(deps.dbPath, (store) =>
      store.list({ type: q.type, since, until, afterSeq, limit: limit + 1 }),
    );
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    return {
      records: page.map((r) => ({ ...r, timeIso: new Date(r.time).toISOString() })),
      nextAfterSeq: more ? (page[page.length - 1]?.seq ?? null) : null,
    };
  });

  let exporting = false;
  app.post('/v1/exports', pre('exports'), async (request, reply) => {
    await auth.check('exports', request);
    const body = (request.body ?? {}) as Record<string, unknown>;
    const format = body.format ?? 'jsonl';
    if (typeof format !== 'string' || !EXPORT_FORMATS.includes(format as ExportFormat)) {
      throw bad(`format must be one of ${EXPORT_FORMATS.join(', ')}`);
    }
    const { from, to } = period(body, deps.maxPeriodDays);
    if (exporting) {
      throw new TokenwatchError(
        'ERR_EXPORT_BUSY',
        'an export is already running; retry when it is done',
      );
    }
    exporting = true;
    try {
      const stamp = new Date(deps.now())
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d{3}/, '');
      const id = `${stamp}-${format}-${randomBytes(4).toString('hex')}`;
      refuseDamaged(
        await ledgerDamage({
          dbPath: deps.dbPath,
          checkpointLog: deps.checkpointLog,
          trusted,
          from,
        }),
      );
      const { manifest } = await withReader(deps.dbPath, (store) =>
        exportBundle({
          store,
          from,
          to,
          format: format as ExportFormat,
          outDir: join(deps.exportDir, id),
          key: deps.signingKey,
          now: deps.now,
          seal: deps.seal,
        }),
      );
      deps.logger.info(
        { id, principal: auth.principalOf(request)?.name, records: manifest.range?.records ?? 0 },
        'evidence bundle exported',
      );
      return reply.status(201).send({
        id,
        manifest,
        files: [MANIFEST_FILE, SIGNATURE_FILE, ...manifest.files.map((f) => f.name)],
      });
    } finally {
      exporting = false;
    }
  });

  app.get('/v1/exports', pre('exports'), async (request) => {
    await auth.check('exports', request);
    if (!existsSync(deps.exportDir)) return { exports: [] };
    const ids = readdirSync(deps.exportDir)
      .filter((d) => EXPORT_ID.test(d))
      .sort()
      .reverse()
      .slice(0, 200);
    return {
      exports: ids.flatMap((id) => {
        try {
          // Listed only when the manifest's signature verifies: a file on disk is not trusted.
          const bytes = readFileSync(join(deps.exportDir, id, MANIFEST_FILE));
          const sig = readFileSync(join(deps.exportDir, id, SIGNATURE_FILE), 'utf8');
          if (!manifestSignatureValid(bytes, sig, deps.signingKey.publicKey)) return [];
          const m = parseManifest(bytes);
          if (typeof m === 'string') return [];
          return [
            { id, createdAt: m.createdAt, query: m.query, range: m.range, files: m.files.length },
          ];
        } catch {
          return [];
        }
      }),
    };
  });

  app.get(
    '/v1/exports/:id/:file',
    pre('exports'),
    async (request: FastifyRequest<{ Params: { id: string; file: string } }>, reply) => {
      await auth.check('exports', request);
      const { id, file } = request.params;
      const served = await openBundleFile(deps.exportDir, id, file, deps.signingKey.publicKey);
      const ext = file.slice(file.lastIndexOf('.') + 1);
      return reply
        .header('content-type', CONTENT_TYPES[ext] ?? 'application/octet-stream')
        .header('content-disposition', `attachment; filename="${file}"`)
        .header('cache-control', 'no-store')
        .header('x-content-type-options', 'nosniff')
        .send(served);
    },
  );
}
