import type { FastifyInstance } from 'fastify';

import type { Auth0Config } from '../../config/providers-schema.js';
import { normalizeAuth0, parseAuth0Body } from '../auth0.js';
import {
  type PushContext,
  mediaType,
  requireBody,
  requireMediaType,
  requireSecretHeader,
  secretMatches,
} from './push-context.js';

/** Path of the Auth0 Log Stream endpoint, under `/v1/providers`. */
export const AUTH0_LOGS_PATH = '/auth0/logs';

/** Auth0 sends every content format as JSON; the JSON-lines types are accepted when set. */
const MEDIA_TYPES = [
  'application/json',
  'application/jsonl',
  'application/x-ndjson',
  'application/json-lines',
  'application/x-jsonlines',
];

/**
 * Auth0 Log Streams, custom webhook (https://auth0.com/docs/customize/log-streams/custom-log-streams):
 * JSON array, JSON lines or one JSON object; the stream's "Authorization Token" arrives verbatim
 * in `Authorization`, so both `<token>` and `Bearer <token>` are accepted.
 */
export function registerAuth0Logs(
  f: FastifyInstance,
  cfg: Auth0Config & { token: string },
  ctx: PushContext,
): void {
  const token = cfg.token;
  const accepted = (v: string | undefined): boolean => {
    const bearer = v !== undefined && /^bearer /i.test(v) ? v.slice(7).trim() : undefined;
    // Both comparisons always run: which form matched must not show in the timing.
    const exact = secretMatches(v, token);
    const asBearer = secretMatches(bearer, token);
    return exact || asBearer;
  };
  f.post(
    AUTH0_LOGS_PATH,
    { bodyLimit: ctx.bodyLimit, onRequest: requireSecretHeader('authorization', accepted) },
    async (request, reply) => {
      requireMediaType(request, MEDIA_TYPES);
      const body = requireBody(request);
      const elements = parseAuth0Body(body, {
        contentType: mediaType(request),
        maxEvents: ctx.maxEvents,
      });
      const events = normalizeAuth0(elements, { ...ctx.normalize, maxEvents: ctx.maxEvents });
      const result = await ctx.ingest.ingest(events, 'push');
      return reply.status(200).send({ status: 'accepted', ...result });
    },
  );
}
