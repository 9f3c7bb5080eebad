import type { Logger } from 'pino';

import { TokenwatchError } from '../../errors.js';
import { parseJsonBody } from '../json-body.js';
import type { ApiAuth } from '../../outbound/api-auth.js';
import { readBounded, withTimeout } from '../../outbound/bounded-fetch.js';
import { type AllowedTarget, confineUrl } from '../../outbound/origin-guard.js';

/** One JSON page of a provider log API. */
export interface Page {
  body: unknown;
  /**
   * `Link` header relations (RFC 8288) as the response wrote them: unchecked text, for the
   * poller to confine to its own origin and path (outbound/origin-guard.ts) before use.
   */
  links: Map<string, string>;
}

/** Options of a {@link PageFetcher}. */
export interface PageFetcherOptions {
  provider: string;
  auth: ApiAuth;
  /** The configured API origin and path prefix: no request leaves it. */
  target: AllowedTarget;
  /** Longest 429 wait honoured; a longer reset ends the run (retried next interval). */
  maxBackoffMs: number;
  /** Fires when the service closes: pending waits and requests end at once. */
  signal: AbortSignal;
  logger: Logger;
  maxEvents: number;
  timeoutMs?: number;
  maxBytes?: number;
  now?: () => number;
}

const MAX_RATE_LIMIT_RETRIES = 5;

/**
 * GETs JSON pages from a provider's log API with its rate-limit protocol: on 429 it waits until
 * `X-Rate-Limit-Reset` (Okta; Auth0 spells it `X-RateLimit-Reset`), epoch seconds, then retries;
 * on 401 it fetches a fresh access token once.
 */
export class PageFetcher {
  readonly #o: PageFetcherOptions;
  readonly #now: () => number;

  constructor(options: PageFetcherOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  async get(requested: URL): Promise<Page> {
    // Defence in depth: whatever the poller built, the credential only goes to the configured
    // origin and path prefix.
    const url = confineUrl(requested.href, this.#o.target, 'offsite_url');
    let reauthed = false;
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(url, {
        headers: { accept: 'application/json', authorization: await this.#o.auth.header() },
        // Never follow: a redirect would carry the Authorization header (or, cross-origin, drop
        // it and read someone else's data); it is refused and counted instead.
        redirect: 'manual',
        signal: withTimeout(this.#o.signal, this.#o.timeoutMs ?? 30_000),
      });
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel();
        throw new TokenwatchError(
          'ERR_PROVIDER_POLL',
          `${this.#o.provider} API answered a redirect (HTTP ${res.status}) for ${url.pathname}: not followed`,
          { details: { status: res.status, reason: 'redirect' } },
        );
      }
      if (res.status === 429 && attempt < MAX_RATE_LIMIT_RETRIES) {
        await res.body?.cancel();
        await this.#backoff(res, attempt);
        continue;
      }
      if (res.status === 401 && !reauthed) {
        await res.body?.cancel();
        reauthed = true;
        this.#o.auth.invalidate();
        continue;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new TokenwatchError(
          'ERR_PROVIDER_POLL',
          `${this.#o.provider} API answered HTTP ${res.status} for ${url.pathname}`,
          {
            details: {
              status: res.status,
              reason: res.status === 429 ? 'rate_limit' : res.status === 401 ? 'auth' : 'http',
            },
          },
        );
      }
      const text = await readBounded(res, this.#o.maxBytes ?? 32 * 1024 * 1024);
      return {
        body: parseJsonBody(text, { maxEvents: this.#o.maxEvents }),
        links: parseLinks(res.headers.get('link')),
      };
    }
  }

  async #backoff(res: Response, attempt: number): Promise<void> {
    const reset = Number(
      res.headers.get('x-rate-limit-reset') ?? res.headers.get('x-ratelimit-reset') ?? NaN,
    );
    const retryAfter = Number(res.headers.get('retry-after') ?? NaN);
    const waitMs = Number.isFinite(reset)
      ? reset * 1000 - this.#now() + 250
      : Number.isFinite(retryAfter)
        ? retryAfter * 1000
        : Math.min(1000 * 2 ** attempt, this.#o.maxBackoffMs);
    if (waitMs > this.#o.maxBackoffMs) {
      throw new TokenwatchError(
        'ERR_PROVIDER_POLL',
        `${this.#o.provider} API rate limit resets in ${Math.ceil(waitMs / 1000)} s, beyond maxBackoffSeconds`,
        { details: { reason: 'rate_limit' } },
      );
    }
    this.#o.logger.info(
      { provider: this.#o.provider, waitMs: Math.max(0, waitMs) },
      'provider API rate limit reached: waiting for the reset',
    );
    await sleep(Math.max(0, waitMs), this.#o.signal);
  }
}

/**
 * Parses `Link: <url>; rel="next", <url>; rel="self"` into relation -> target text, unresolved:
 * the caller confines each target to the configured origin and path before following it.
 */
export function parseLinks(header: string | null): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  const re = /<([^>]*)>((?:\s*;\s*[^;,]+)*)/g;
  for (const m of header.slice(0, 16 * 1024).matchAll(re)) {
    const rel = /;\s*rel\s*=\s*"?([^";,]+)"?/i.exec(m[2] ?? '')?.[1];
    if (!rel) continue;
    for (const r of rel.trim().toLowerCase().split(/\s+/)) if (!out.has(r)) out.set(r, m[1] ?? '');
  }
  return out;
}

/** Resolves after `ms`, or rejects at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
