import { createHash, timingSafeEqual } from 'node:crypto';

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

import { TokenwatchError } from '../../errors.js';
import type { EventIngest } from '../ingest/event-ingest.js';
import type { ReplayGuard } from '../ingest/replay-guard.js';
import type { NormalizeContext } from '../payload-reader.js';

/** What every push route is built from. */
export interface PushContext {
  ingest: EventIngest;
  normalize: NormalizeContext;
  /** Largest body accepted, bytes. */
  bodyLimit: number;
  /** Most events accepted in one delivery. */
  maxEvents: number;
  now: () => number;
  logger: Logger;
  /** Durable jti replay protection of SETs and logout tokens (present when either is configured). */
  replay?: ReplayGuard;
}

/**
 * Constant-time comparison of a presented secret with the configured one: both are hashed first
 * so neither their contents nor their lengths leak through timing.
 */
export function secretMatches(presented: string | undefined, expected: string): boolean {
  const a = createHash('sha256')
    .update(presented ?? '')
    .digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && presented !== undefined && expected.length > 0;
}

/** A single-valued request header (a repeated header counts as absent). */
export function headerValue(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * An `onRequest` hook refusing the request (401) unless `header` carries one of `accepted`,
 * checked before the body is read.
 */
export function requireSecretHeader(
  header: string,
  accepted: (presented: string | undefined) => boolean,
) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (!accepted(headerValue(request, header))) {
      throw new TokenwatchError(
        'ERR_WEBHOOK_UNAUTHORIZED',
        `missing or wrong ${header} header`,
        {},
      );
    }
  };
}

/** The media type of the request (lower case, parameters dropped), or '' without one. */
export function mediaType(request: FastifyRequest): string {
  return (headerValue(request, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Refuses (415) a body whose media type is not one of `allowed`. */
export function requireMediaType(request: FastifyRequest, allowed: readonly string[]): void {
  const type = mediaType(request);
  if (!allowed.includes(type)) {
    throw new TokenwatchError(
      'ERR_WEBHOOK_CONTENT_TYPE',
      `Content-Type must be ${allowed.join(' or ')}`,
      { details: { expected: allowed } },
    );
  }
}

/** The raw body bytes the catch-all parser kept; empty when there was none. */
export function rawBody(request: FastifyRequest): Buffer {
  const b = request.body;
  if (Buffer.isBuffer(b)) return b;
  if (typeof b === 'string') return Buffer.from(b, 'utf8');
  return Buffer.alloc(0);
}

/** Refuses an empty body (400). */
export function requireBody(request: FastifyRequest): Buffer {
  const body = rawBody(request);
  if (body.length === 0) {
    throw new TokenwatchError('ERR_WEBHOOK_MALFORMED', 'request body is empty');
  }
  return body;
}
