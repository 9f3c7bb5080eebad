import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Ledger } from '../audit/ledger.js';
import { FINDING_RULES, type FindingRule } from '../domain/finding.js';
import { TokenwatchError } from '../errors.js';
import type { FindingsService } from '../findings/findings-service.js';

interface Query {
  state?: string;
  rule?: string;
  since?: string;
  limit?: string;
}

/**
 * GET /v1/findings?state=open|resolved&rule=&since=ISO&limit=N: open findings come from the
 * correlator; resolved ones (and their history) from the audit ledger.
 */
export function registerFindingsRoute(
  app: FastifyInstance,
  deps: {
    findings: FindingsService;
    ledger: Ledger;
    guard: (r: FastifyRequest) => void | Promise<void>;
    /** Refuses a missing/malformed credential before anything else runs (onRequest). */
    precheck?: (r: FastifyRequest) => Promise<void>;
  },
): void {
  const opts = deps.precheck ? { onRequest: deps.precheck } : {};
  app.get('/v1/findings', opts, async (request) => {
    await deps.guard(request);
    const q = request.query as Query;
    const state = q.state ?? 'open';
    if (state !== 'open' && state !== 'resolved') {
      throw new TokenwatchError('ERR_BAD_REQUEST', 'state must be open or resolved');
    }
    if (q.rule !== undefined && !FINDING_RULES.includes(q.rule as FindingRule)) {
      throw new TokenwatchError(
        'ERR_BAD_REQUEST',
        `rule must be one of ${FINDING_RULES.join(', ')}`,
      );
    }
    const since = q.since === undefined ? undefined : Date.parse(q.since);
    if (since !== undefined && Number.isNaN(since)) {
      throw new TokenwatchError('ERR_BAD_REQUEST', 'since must be an ISO 8601 time');
    }
    const limit = q.limit === undefined ? 1000 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new TokenwatchError('ERR_BAD_REQUEST', 'limit must be 1..10000');
    }
    if (state === 'open') {
      const open = deps.findings
        .openFindings()
        .filter(
          (f) =>
            (q.rule === undefined || f.rule === q.rule) &&
            (since === undefined || f.openedAt >= since),
        )
        .slice(0, limit);
      return { state, findings: open };
    }
    const rows = deps.ledger
      .list({ type: q.rule ? `finding.${q.rule}` : 'finding.*', since })
      .filter((r) => r.attrs.state === 'resolved')
      .slice(-limit);
    return {
      state,
      findings: rows.map((r) => ({
        seq: r.seq,
        rule: r.type.slice('finding.'.length),
        kind: r.kind,
        fingerprint: r.fingerprint,
        ...r.attrs,
        at: r.time,
      })),
    };
  });
}
