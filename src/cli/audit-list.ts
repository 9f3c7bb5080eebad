import { parseArgs } from 'node:util';
import { openLedgerStore } from '../audit/store/ledger-store.js';
import { parseIso, usage } from './usage.js';

/** `tokenwatch audit list --db PATH [--type T] [--since ISO] [--limit N] [--json]` */
export function auditList(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      db: { type: 'string' },
      type: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: true },
    },
    strict: true,
  });
  if (!values.db) usage('audit list needs --db PATH');
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    usage('--limit must be a whole number');
  }
  const store = openLedgerStore(values.db);
  try {
    const rows = store.list({
      type: values.type,
      since: parseIso(values.since, '--since'),
      limit,
    });
    for (const r of rows) {
      process.stdout.write(
        `${JSON.stringify({
          seq: r.seq,
          time: new Date(r.time).toISOString(),
          source: r.source,
          type: r.type,
          kind: r.kind,
          fingerprint: r.fingerprint,
          attributes: r.attrs,
        })}\n`,
      );
    }
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}
