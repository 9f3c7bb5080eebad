import type { Auth0Config } from '../../config/providers-schema.js';
import type { ProviderEvent } from '../../domain/provider-event.js';
import { normalizeAuth0 } from '../auth0.js';
import { OffsiteUrlError } from '../../outbound/origin-guard.js';
import { malformed } from '../payload-reader.js';
import type { PollRun } from './poll-loop.js';
import { type PollDeps, normalizeEach, trimBase } from './poll-deps.js';

type Auth0Poll = NonNullable<Auth0Config['poll']>;

const CURSOR = 'auth0';
/** Auth0 log ids: digits (older tenants: hex or base62); nothing that could change a URL. */
const AUTH0_LOG_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Auth0 Management API logs poller with checkpoint pagination: `GET /api/v2/logs?from=<log_id>
 * &take=<n>` returns the logs after that id; the cursor is the newest log id committed
 * (https://auth0.com/docs/deploy-monitor/logs/retrieve-log-events-using-mgmt-api).
 */
export function auth0PollRun(cfg: Auth0Poll, deps: PollDeps): PollRun {
  const base = trimBase(cfg.baseUrl);
  return async () => {
    const { fetcher, cursors, ingest, now } = deps;
    let from = cursors.get(CURSOR);
    // A database row is not trusted: a log id is short and plain, or the cursor is ignored.
    if (from !== undefined && !AUTH0_LOG_ID.test(from)) {
      deps.onRefused?.(new OffsiteUrlError('malformed', 'offsite_cursor'));
      deps.logger.warn(
        { provider: 'auth0', reason: 'offsite_cursor', length: from.length },
        'stored Auth0 cursor refused: not a log id; reading from the oldest log the API keeps',
      );
      from = undefined;
    }
    let total = 0;
    for (let page = 0; page < cfg.maxPagesPerRun; page++) {
      const url = new URL(`${base}/api/v2/logs`);
      if (from !== undefined) url.searchParams.set('from', from);
      url.searchParams.set('take', String(cfg.pageSize));
      const { body } = await fetcher.get(url);
      if (!Array.isArray(body)) throw malformed('Auth0 logs page is not an array');
      if (body.length === 0) break;
      const events = normalizeEach('auth0', body, normalizeAuth0, deps);
      if (events.length > 0) {
        await ingest.ingest(events, 'poll');
        total += events.length;
        from = newestId(events);
        cursors.set(CURSOR, from, now());
      } else {
        break; // nothing readable on a full page: no id to move the cursor by
      }
      if (body.length < cfg.pageSize) break;
    }
    return total;
  };
}

/** Id of the newest event (by provider time; the later element on a tie). */
function newestId(events: readonly ProviderEvent[]): string {
  let best = events[0] as ProviderEvent;
  for (const e of events) if (e.occurredAt >= best.occurredAt) best = e;
  return best.id;
}
