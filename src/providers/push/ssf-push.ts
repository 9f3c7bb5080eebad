import type { FastifyInstance } from 'fastify';
import type { JWTVerifyGetKey } from 'jose';

import type { SsfConfig } from '../../config/providers-schema.js';
import { verificationAuditInput } from '../ingest/audit-inputs.js';
import { verifySet } from '../set-verify.js';
import { normalizeSsf } from '../ssf.js';
import {
  type PushContext,
  requireBody,
  requireMediaType,
  requireSecretHeader,
  secretMatches,
} from './push-context.js';

/** Path of the SET push endpoint, under `/v1/providers`. */
export const SSF_PUSH_PATH = '/ssf';

/**
 * RFC 8935 push delivery of Security Event Tokens. §2.2: the body is the compact JWS with
 * `Content-Type: application/secevent+jwt`; §2.3: 202 with no body once the SET is verified
 * and recorded, else 400 `{err, description}`. A `jti` seen before is refused as
 * `invalid_request` (replay), after the signature check so an unsigned request cannot poison the
 * replay cache. SSF stream verification events (SSF 1.0 §8.1.4) are recorded and acknowledged.
 */
export function registerSsfPush(
  f: FastifyInstance,
  cfg: SsfConfig,
  keys: JWTVerifyGetKey,
  ctx: PushContext,
): void {
  const authorization = cfg.authorization;
  const window = { maxAgeSec: cfg.maxAgeSeconds, clockToleranceSec: cfg.clockToleranceSeconds };
  const secret =
    authorization !== undefined
      ? requireSecretHeader('authorization', (v) => secretMatches(v, authorization))
      : undefined;
  f.post(
    SSF_PUSH_PATH,
    {
      bodyLimit: ctx.bodyLimit,
      // Header checks before the body is read: the secret (when configured), the media type.
      onRequest: async (request, reply) => {
        if (secret) await secret(request, reply);
        requireMediaType(request, ['application/secevent+jwt']);
      },
    },
    async (request, reply) => {
      const token = requireBody(request).toString('utf8').trim();
      const set = await verifySet(token, keys, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        clockToleranceSec: cfg.clockToleranceSeconds,
        maxAgeSec: cfg.maxAgeSeconds,
        maxTokenLength: ctx.bodyLimit,
        now: ctx.now,
      });
      const result = normalizeSsf(set.payload, { ...ctx.normalize, maxEvents: ctx.maxEvents });
      const record = async (): Promise<unknown> => {
        if ('verification' in result) {
          const input = verificationAuditInput(
            set.jti,
            set.iss,
            result.verification.state,
            ctx.now(),
          );
          return ctx.ingest.record('ssf', set.jti, input, 'reject');
        }
        return ctx.ingest.ingest(result.events, 'push', 'reject');
      };
      if (ctx.replay) {
        await ctx.replay.once('ssf', set, window, record);
      } else {
        await record();
      }
      return reply.status(202).send();
    },
  );
}
