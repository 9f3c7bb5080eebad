import type { OktaConfig } from '../../config/providers-schema.js';
import type { ProviderEvent } from '../../domain/provider-event.js';
import { OKTA_TOKEN_EVENT_TYPES, normalizeOkta } from '../okta.js';
import { OffsiteUrlError, confineUrl } from '../../outbound/origin-guard.js';
import { malformed } from '../payload-reader.js';
import type { PollRun } from './poll-loop.js';
import { type PollDeps, normalizeEach, pathAndQuery, trimBase } from './poll-deps.js';

type OktaPoll = NonNullable<OktaConfig['poll']>;

const CURSOR = 'okta';

/** Default System Log filter: the token events Event Hooks probably do not deliver. */
export const OKTA_DEFAULT_FILTER = OKTA_TOKEN_EVENT_TYPES.map((t) => `eventType eq "${t}"`).join(
  ' or ',
);

/**
 * Okta System Log poller (`GET /api/v1/logs`). The cursor is the `rel="next"` link, which Okta
 * returns even on an empty page when polling with `since` and no `until`: following it later
 * yields exactly the events published since
 * (https://developer.okta.com/docs/reference/system-log-query/#polling-requests).
 *
 * The next link and the stored cursor are untrusted (a response, a database row): each must be
 * `GET <baseUrl>/api/v1/logs?...` on the configured origin (outbound/origin-guard.ts), or it is
 * refused, counted and never followed. A refused stored cursor falls back to the initial
 * look-back (redelivered events deduplicate); a refused next link ends the run.
 */
export function oktaPollRun(cfg: OktaPoll, deps: PollDeps): PollRun {
  const base = trimBase(cfg.baseUrl);
  const target = { base: new URL(base), path: '/api/v1/logs' };
  const filter = cfg.filter ?? OKTA_DEFAULT_FILTER;

  const sinceUrl = (sinceMs: number): URL => {
    const u = new URL(`${base}/api/v1/logs`);
    u.searchParams.set('since', new Date(sinceMs).toISOString());
    u.searchParams.set('limit', String(cfg.pageSize));
    u.searchParams.set('sortOrder', 'ASCENDING');
    if (filter !== '') u.searchParams.set('filter', filter);
    return u;
  };

  return async () => {
    const { fetcher, cursors, ingest, now, logger } = deps;
    const stored = cursors.get(CURSOR);
    let url: URL | undefined;
    if (stored !== undefined) {
      try {
        url = confineUrl(stored, target, 'offsite_cursor');
      } catch (err) {
        if (!(err instanceof OffsiteUrlError)) throw err;
        deps.onRefused?.(err);
        logger.warn(
          { provider: 'okta', reason: 'offsite_cursor', kind: err.kind, length: stored.length },
          'stored Okta cursor refused: not on the configured origin; starting from the look-back',
        );
      }
    }
    url ??= sinceUrl(now() - cfg.initialLookbackHours * 3_600_000);
    let total = 0;
    for (let page = 0; page < cfg.maxPagesPerRun; page++) {
      const { body, links } = await fetcher.get(url);
      if (!Array.isArray(body)) throw malformed('Okta System Log page is not an array');
      const events = normalizeEach('okta', body, normalizeOkta, deps);
      if (events.length > 0) await ingest.ingest(events, 'poll');
      total += events.length;
      const link = links.get('next');
      let next: URL | undefined;
      try {
        next = link === undefined ? undefined : confineUrl(link, target, 'offsite_link');
      } catch (err) {
        // The page committed: move past it by time (our own URL), then end the run, counted.
        if (events.length > 0) cursors.set(CURSOR, pathAndQuery(sinceUrl(latest(events))), now());
        throw err;
      }
      // Only once the page committed does the cursor move past it.
      if (next) cursors.set(CURSOR, pathAndQuery(next), now());
      else if (events.length > 0)
        cursors.set(CURSOR, pathAndQuery(sinceUrl(latest(events))), now());
      if (!next || events.length < cfg.pageSize) break;
      url = next;
    }
    return total;
  };
}

/** Newest provider timestamp of a page (`since` is inclusive: that event dedups next time). */
function latest(events: readonly ProviderEvent[]): number {
  return events.reduce((m, e) => Math.max(m, e.occurredAt), 0);
}
