import type { FastifyInstance } from 'fastify';

import type { OktaConfig } from '../../config/providers-schema.js';
import { TokenwatchError } from '../../errors.js';
import { parseJsonBody } from '../json-body.js';
import { normalizeOkta } from '../okta.js';
import {
  type PushContext,
  headerValue,
  requireBody,
  requireMediaType,
  requireSecretHeader,
  secretMatches,
} from './push-context.js';

/** Path of the Okta Event Hook endpoint, under `/v1/providers`. */
export const OKTA_HOOK_PATH = '/okta/hook';

/** Okta's challenge values are short opaque strings; anything else is not worth echoing. */
const CHALLENGE_RE = /^[\x21-\x7e]{1,512}$/;

/**
 * Okta Event Hooks (https://developer.okta.com/docs/concepts/event-hooks/): the one-time GET
 * verification echoes `X-Okta-Verification-Challenge`; deliveries are POSTed JSON carrying the
 * static shared secret in a header the admin names. Okta retries once, and not on 4xx, so the
 * 200 waits for the audit commit and a failed commit answers 503.
 */
export function registerOktaHook(
  f: FastifyInstance,
  cfg: OktaConfig & { secret: string },
  ctx: PushContext,
): void {
  // The challenge proves control of the URL to Okta; echoing it reveals nothing, so it does not
  // depend on the shared secret (which Okta's verification call is not documented to send).
  f.get(OKTA_HOOK_PATH, async (request, reply) => {
    const challenge = headerValue(request, 'x-okta-verification-challenge');
    if (challenge === undefined || !CHALLENGE_RE.test(challenge)) {
      throw new TokenwatchError(
        'ERR_WEBHOOK_BAD_REQUEST',
        'missing or invalid X-Okta-Verification-Challenge header',
      );
    }
    return reply.header('cache-control', 'no-store').send({ verification: challenge });
  });

  const secret = cfg.secret;
  f.post(
    OKTA_HOOK_PATH,
    {
      bodyLimit: ctx.bodyLimit,
      onRequest: requireSecretHeader(cfg.header, (v) => secretMatches(v, secret)),
    },
    async (request, reply) => {
      requireMediaType(request, ['application/json']);
      const body = requireBody(request);
      const payload = parseJsonBody(body.toString('utf8'), { maxEvents: ctx.maxEvents });
      const events = normalizeOkta(payload, { ...ctx.normalize, maxEvents: ctx.maxEvents });
      const result = await ctx.ingest.ingest(events, 'push');
      return reply.status(200).send({ status: 'accepted', ...result });
    },
  );
}
