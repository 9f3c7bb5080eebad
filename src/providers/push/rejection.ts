import type { ErrorCode } from '../../errors.js';
import { isTokenwatchError } from '../../errors.js';
import type { RejectionReason } from '../../metrics/provider-metrics.js';

/** Which error body a route speaks. */
export type ErrorDialect =
  /** tokenwatch's `{error:{code,message}}`. */
  | 'typed'
  /** RFC 8935 §2.3 `{err, description}` for 4xx. */
  | 'set'
  /** OIDC Back-Channel Logout §2.8: OAuth `{error, error_description}` for 4xx. */
  | 'oauth';

/** A refused request, classified once for the reply, the metric and the audit record. */
export interface Classified {
  status: number;
  code: ErrorCode;
  reason: RejectionReason;
  message: string;
  details: Record<string, unknown>;
}

const REASON_BY_CODE: Partial<Record<ErrorCode, RejectionReason>> = {
  ERR_WEBHOOK_UNAUTHORIZED: 'unauthorized',
  ERR_WEBHOOK_SIGNATURE: 'signature',
  ERR_WEBHOOK_MALFORMED: 'malformed',
  ERR_WEBHOOK_BAD_REQUEST: 'malformed',
  ERR_BAD_REQUEST: 'malformed',
  ERR_WEBHOOK_CONTENT_TYPE: 'content_type',
  ERR_WEBHOOK_TOO_LARGE: 'too_large',
  ERR_WEBHOOK_TOKEN_INVALID: 'invalid_token',
  ERR_WEBHOOK_REPLAY: 'replay',
  ERR_AUDIT_DEGRADED: 'degraded',
  ERR_AUDIT_CLOSED: 'degraded',
  ERR_AUDIT_WRITE: 'degraded',
};

/**
 * Maps any error reaching a provider route (ours, fastify's parser errors) to a rejection. The
 * status is the catalogue's, except that RFC 8935 §2.3 (SET push) and OIDC Back-Channel Logout
 * §2.8 answer a token whose signature does not verify with 400, not 401.
 */
export function classify(err: unknown, dialect: ErrorDialect = 'typed'): Classified {
  if (isTokenwatchError(err)) {
    return {
      status: dialect !== 'typed' && err.code === 'ERR_WEBHOOK_SIGNATURE' ? 400 : err.status,
      code: err.code,
      reason: REASON_BY_CODE[err.code] ?? 'unavailable',
      message: err.status >= 500 && err.code === 'ERR_INTERNAL' ? 'internal error' : err.message,
      details: err.details ?? {},
    };
  }
  const e = err as { statusCode?: unknown; message?: unknown };
  const status = typeof e.statusCode === 'number' && e.statusCode >= 400 ? e.statusCode : 500;
  if (status === 413) return plain(413, 'ERR_WEBHOOK_TOO_LARGE', 'too_large', 'body too large');
  if (status === 415) {
    return plain(415, 'ERR_WEBHOOK_CONTENT_TYPE', 'content_type', 'unsupported media type');
  }
  if (status < 500) {
    const message = typeof e.message === 'string' ? e.message.slice(0, 200) : 'bad request';
    return plain(400, 'ERR_WEBHOOK_BAD_REQUEST', 'malformed', message);
  }
  return plain(500, 'ERR_INTERNAL', 'unavailable', 'internal error');
}

function plain(
  status: number,
  code: ErrorCode,
  reason: RejectionReason,
  message: string,
): Classified {
  return { status, code, reason, message, details: {} };
}

const SET_ERR_BY_REASON: Partial<Record<RejectionReason, string>> = {
  unauthorized: 'authentication_failed',
  signature: 'authentication_failed',
};

/** The reply body of a rejection in the route's dialect. */
export function rejectionBody(c: Classified, dialect: ErrorDialect): Record<string, unknown> {
  if (c.status < 500 && dialect === 'set') {
    const err = typeof c.details.err === 'string' ? c.details.err : undefined;
    return {
      err: err ?? SET_ERR_BY_REASON[c.reason] ?? 'invalid_request',
      description: c.message,
    };
  }
  if (c.status < 500 && dialect === 'oauth') {
    return { error: 'invalid_request', error_description: c.message };
  }
  return { error: { code: c.code, message: c.message, ...c.details } };
}
