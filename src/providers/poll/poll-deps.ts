import type { Logger } from 'pino';

import type { ProviderEvent } from '../../domain/provider-event.js';
import { isTokenwatchError } from '../../errors.js';

import type { OffsiteUrlError } from '../../outbound/origin-guard.js';
import type { EventIngest } from '../ingest/event-ingest.js';
import type { NormalizeContext } from '../payload-reader.js';
import type { CursorStore } from '../../audit/cursor-store.js';
import type { PageFetcher } from './page-fetcher.js';

/** What every provider poller is built from. */
export interface PollDeps {
  fetcher: PageFetcher;
  cursors: CursorStore;
  ingest: EventIngest;
  normalize: NormalizeContext;
  now: () => number;
  logger: Logger;
  /** Counts a refused URL or cursor that did not end the run (the run's errors count anyway). */
  onRefused?: (err: OffsiteUrlError) => void;
}

/** `baseUrl` without a trailing slash, so paths can be appended. */
export function trimBase(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '');
}

/** Path and query of `url`: what a cursor stores, resolved against the configured origin. */
export function pathAndQuery(url: URL): string {
  return `${url.pathname}${url.search}`;
}

/**
 * Normalizes an API page element by element: one malformed entry in a provider's log must not
 * block the poller forever, so it is skipped and logged (pushes, in contrast, refuse the body).
 */
export function normalizeEach(
  provider: string,
  elements: readonly unknown[],
  normalize: (payload: unknown[], ctx: NormalizeContext) => ProviderEvent[],
  deps: Pick<PollDeps, 'normalize' | 'logger'>,
): ProviderEvent[] {
  const out: ProviderEvent[] = [];
  elements.forEach((el, index) => {
    try {
      out.push(...normalize([el], deps.normalize));
    } catch (err) {
      if (!isTokenwatchError(err)) throw err;
      deps.logger.warn({ provider, index, code: err.code }, 'skipped a malformed API log entry');
    }
  });
  return out;
}
