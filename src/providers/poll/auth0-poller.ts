import type { Auth0Config } from '../../config/providers-schema.js';
import type { ProviderEvent } from '../../domain/provider-event.js';
import { normalizeAuth0 } from '../auth0.js';
import { malformed } from '../payload-reader.js';
import type { PollRun } from './poll-loop.js';
import { type PollDeps, normalizeEach, trimBase } from './poll-deps.js';

type Auth0Poll = NonNullable<Auth0Config['poll']>;

const CURSOR = 'auth0';

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
