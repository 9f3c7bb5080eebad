import type { KeycloakConfig } from '../../config/providers-schema.js';
import { normalizeKeycloak } from '../keycloak.js';
import { OffsiteUrlError } from '../../outbound/origin-guard.js';
import { isRecord, malformed } from '../payload-reader.js';
import type { PollRun } from './poll-loop.js';
import { type PollDeps, normalizeEach, trimBase } from './poll-deps.js';

type KeycloakPoll = NonNullable<KeycloakConfig['poll']>;
type Stream = 'events' | 'admin-events';

/** Events committed per ledger round trip (and cursor update). */
const CHUNK = 1000;
const DAY_MS = 86_400_000;

/**
 * Keycloak admin REST API poller: `GET /admin/realms/{realm}/events` and `/admin-events` with
 * `first`/`max` paging and `dateFrom`. Keycloak answers newest first, so a run pages back until
 * it reaches the cursor time, then commits oldest first and moves the cursor (epoch ms) after
 * each committed chunk. Events sharing the cursor's millisecond are read again and deduplicated.
 */
export function keycloakPollRun(cfg: KeycloakPoll, deps: PollDeps): PollRun {
  const base = `${trimBase(cfg.baseUrl)}/admin/realms/${encodeURIComponent(cfg.realm)}`;
  const streams: Stream[] = [
    ...(cfg.userEvents ? (['events'] as const) : []),
    ...(cfg.adminEvents ? (['admin-events'] as const) : []),
  ];

  const runStream = async (stream: Stream): Promise<number> => {
    const { fetcher, cursors, ingest, now, logger } = deps;
    const key = `keycloak:${stream}`;
    const raw = cursors.get(key);
    const stored = raw !== undefined && /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
    // A database row is not trusted: epoch ms, not in the future (a cursor set ahead would
    // silently skip events), or the cursor is refused and the look-back used.
    const valid = Number.isSafeInteger(stored) && stored <= now() + DAY_MS;
    if (raw !== undefined && !valid) {
      deps.onRefused?.(new OffsiteUrlError('malformed', 'offsite_cursor'));
      logger.warn(
        { provider: 'keycloak', stream, reason: 'offsite_cursor', length: raw.length },
        'stored Keycloak cursor refused: not a plausible epoch-ms time; using the look-back',
      );
    }
    const since = valid ? stored : now() - cfg.initialLookbackHours * 3_600_000;
    // dateFrom is a calendar day in the server's zone: start a day early, filter on `time`.
    const dateFrom = new Date(since - DAY_MS).toISOString().slice(0, 10);

    let kept: Record<string, unknown>[] = [];
    let reachedCursor = false;
    let first = 0;
    for (let page = 0; page < cfg.maxPagesPerRun; page++) {
      const url = new URL(`${base}/${stream}`);
      url.searchParams.set('dateFrom', dateFrom);
      url.searchParams.set('first', String(first));
      url.searchParams.set('max', String(cfg.pageSize));
      const { body } = await fetcher.get(url);
      if (!Array.isArray(body)) throw malformed(`Keycloak ${stream} page is not an array`);
      for (const el of body) {
        if (!isRecord(el)) continue;
        if (typeof el.time === 'number' && el.time < since) reachedCursor = true;
        else kept.push(el);
      }
      // Newest first: when too many arrived since the cursor, keep the oldest (the rest is
      // read by the next run once the cursor moved).
      if (kept.length > cfg.maxEventsPerRun) kept = kept.slice(-cfg.maxEventsPerRun);
      if (reachedCursor || body.length < cfg.pageSize) {
        reachedCursor = true;
        break;
      }
      first += cfg.pageSize;
    }
    if (!reachedCursor) {
      logger.warn(
        { provider: 'keycloak', stream, pages: cfg.maxPagesPerRun },
        'Keycloak poll did not reach its cursor within maxPagesPerRun: older events may be missed',
      );
    }
    kept.reverse(); // oldest first
    kept.sort((a, b) => (Number(a.time) || 0) - (Number(b.time) || 0));
    for (let i = 0; i < kept.length; i += CHUNK) {
      const chunk = kept.slice(i, i + CHUNK);
      const events = normalizeEach('keycloak', chunk, normalizeKeycloak, deps);
      await ingest.ingest(events, 'poll');
      const newest = events.reduce((m, e) => Math.max(m, e.occurredAt), since);
      cursors.set(key, String(newest), now());
    }
    return kept.length;
  };

  return async () => {
    let total = 0;
    for (const s of streams) total += await runStream(s);
    return total;
  };
}
