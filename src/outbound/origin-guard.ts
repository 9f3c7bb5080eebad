import { TokenwatchError } from '../errors.js';

/**
 * Outbound requests go only where the configuration says (issue #17, finding 1). Every URL a
 * provider or the database hands us (a `Link: rel="next"` target, a stored cursor, a redirect
 * `Location`, a discovered endpoint) is checked here before a request carrying credentials is
 * built from it.
 *
 * What is trusted: only the configured `baseUrl` (its scheme, host, port and path prefix). What
 * is not: anything a response, a redirect or a database row says. WHATWG URL parsing is lenient
 * (`http://okta//evil`, `/\evil`, `//evil`, `%2F%2Fevil`, tabs and newlines stripped), so the
 * raw text is checked as well as the parsed result: the text must be what a well-behaved
 * provider sends, and the parsed URL must land on the configured origin and path.
 */

/** What was wrong with a refused outbound URL (logged; the metric counts by {@link OffsiteSource}). */
export type OffsiteReason =
  | 'scheme'
  | 'host'
  | 'port'
  | 'userinfo'
  | 'backslash'
  | 'protocol_relative'
  | 'encoded'
  | 'path'
  | 'malformed';

/** Where a refused URL came from: the `reason` label of `tokenwatch_provider_poll_errors_total`. */
export type OffsiteSource = 'offsite_link' | 'offsite_cursor' | 'offsite_url';

/** A refused outbound URL: never followed, counted and logged (never the URL itself). */
export class OffsiteUrlError extends TokenwatchError {
  readonly kind: OffsiteReason;
  constructor(kind: OffsiteReason, what: OffsiteSource) {
    super(
      'ERR_PROVIDER_POLL',
      `${what.replace('_', ' ')} refused (${kind}): not on the configured API origin and path`,
      {
        details: { reason: what, kind },
      },
    );
    this.name = 'OffsiteUrlError';
    this.kind = kind;
  }
}

/** The configured origin and path prefix outbound requests are confined to. */
export interface AllowedTarget {
  /** The configured base URL (`providers.<name>.poll.baseUrl`). */
  base: URL;
  /** Exact path a target must have (after the base's prefix), e.g. `/api/v1/logs`. */
  path?: string;
}

/** Control characters, spaces and the characters WHATWG URL parsing silently strips or folds. */
// eslint-disable-next-line no-control-regex
const UNSAFE_TEXT = /[\u0000-\u0020\u007f-\u009f\u00a0\u2028\u2029\ufeff]/;
/** Percent-encodings that change how a path or authority is read once decoded. */
const ENCODED_SEPARATORS = /%(?:2f|5c|2e|40|3a|25|00|0[9ad])/i;

/** Effective port of a URL (the scheme default when none is written). */
function portOf(u: URL): string {
  if (u.port !== '') return u.port;
  return u.protocol === 'https:' ? '443' : u.protocol === 'http:' ? '80' : '';
}

/**
 * Checks `raw` (absolute, or a path starting with a single `/`) against `target` and returns the
 * URL to request. Throws {@link OffsiteUrlError} naming the first problem found.
 */
export function confineUrl(raw: string, target: AllowedTarget, what: OffsiteSource): URL {
  if (raw.length === 0 || raw.length > 8192) throw new OffsiteUrlError('malformed', what);
  if (raw.includes('\\')) throw new OffsiteUrlError('backslash', what);
  if (UNSAFE_TEXT.test(raw)) throw new OffsiteUrlError('malformed', what);
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(raw);
  if (!absolute && raw.startsWith('//')) throw new OffsiteUrlError('protocol_relative', what);
  if (!absolute && !raw.startsWith('/')) throw new OffsiteUrlError('malformed', what);
  // Before parsing: the URL parser decodes `%2e%2e` into a `..` segment and resolves it.
  if (ENCODED_SEPARATORS.test(raw.split(/[?#]/, 1)[0] ?? ''))
    throw new OffsiteUrlError('encoded', what);
  let url: URL;
  try {
    url = new URL(raw, target.base);
  } catch {
    throw new OffsiteUrlError('malformed', what);
  }
  if (absolute) {
    // The authority as written: `http://okta//127.0.0.1:1/` parses with host `okta` but says
    // something else to a lenient reader (and to whoever crafted it).
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)(.*)$/s.exec(raw);
    if (!m) throw new OffsiteUrlError('malformed', what);
    if ((m[1] ?? '').includes('@')) throw new OffsiteUrlError('userinfo', what);
    if ((m[2] ?? '').startsWith('//')) throw new OffsiteUrlError('protocol_relative', what);
  }
  if (url.username !== '' || url.password !== '') throw new OffsiteUrlError('userinfo', what);
  if (url.protocol !== target.base.protocol) throw new OffsiteUrlError('scheme', what);
  if (url.hostname !== target.base.hostname) throw new OffsiteUrlError('host', what);
  if (portOf(url) !== portOf(target.base)) throw new OffsiteUrlError('port', what);
  const rawPath = url.pathname;
  if (ENCODED_SEPARATORS.test(rawPath)) throw new OffsiteUrlError('encoded', what);
  if (rawPath.startsWith('//')) throw new OffsiteUrlError('protocol_relative', what);
  const prefix = target.base.pathname.replace(/\/+$/, '');
  if (target.path !== undefined && rawPath !== `${prefix}${target.path}`)
    throw new OffsiteUrlError('path', what);
  if (target.path === undefined && prefix !== '' && !rawPath.startsWith(`${prefix}/`))
    throw new OffsiteUrlError('path', what);
  url.hash = '';
  return url;
}
