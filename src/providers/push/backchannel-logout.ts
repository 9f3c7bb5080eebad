import type { FastifyInstance } from 'fastify';
import type { JWTVerifyGetKey } from 'jose';

import type { OidcConfig } from '../../config/providers-schema.js';
import { TokenwatchError } from '../../errors.js';
import { logoutTokenToEvent, verifyLogoutToken } from '../logout-token.js';
import { type PushContext, requireBody, requireMediaType } from './push-context.js';

/** Path of the back-channel logout endpoint, under `/v1/providers`. */
export const BACKCHANNEL_LOGOUT_PATH = '/oidc/backchannel-logout';

/**
 * OpenID Connect Back-Channel Logout 1.0 §2.5-2.8: a form POST of `logout_token`, validated per
 * §2.6 (replay by `jti` included), answered 200 on success and 400 `{error:"invalid_request"}`
 * otherwise, always with `Cache-Control: no-store` (§2.8).
 */
export function registerBackchannelLogout(
  f: FastifyInstance,
  cfg: OidcConfig,
  keys: JWTVerifyGetKey,
  ctx: PushContext,
): void {
  const window = { maxAgeSec: cfg.maxAgeSeconds, clockToleranceSec: cfg.clockToleranceSeconds };
  f.post(
    BACKCHANNEL_LOGOUT_PATH,
    {
      bodyLimit: ctx.bodyLimit,
      // The media type is refused before the body is read.
      onRequest: async (request) => {
        requireMediaType(request, ['application/x-www-form-urlencoded']);
        return Promise.resolve();
      },
      onSend: async (_request, reply, payload) => {
        reply.header('cache-control', 'no-store');
        return payload;
      },
    },
    async (request, reply) => {
      const form = new URLSearchParams(requireBody(request).toString('utf8'));
      const tokens = form.getAll('logout_token');
      if (tokens.length !== 1 || !tokens[0]) {
        throw new TokenwatchError(
          'ERR_WEBHOOK_MALFORMED',
          'expected exactly one logout_token parameter',
        );
      }
      const verified = await verifyLogoutToken(tokens[0], keys, {
        issuer: cfg.issuer,
        audience: cfg.clientId,
        clockToleranceSec: cfg.clockToleranceSeconds,
        maxAgeSec: cfg.maxAgeSeconds,
        now: ctx.now,
      });
      const event = logoutTokenToEvent(verified, ctx.normalize);
      const record = () => ctx.ingest.ingest([event], 'push', 'reject');
      if (ctx.replay) {
        await ctx.replay.once('oidc', verified, window, record);
      } else {
        await record();
      }
      return reply.status(200).send();
    },
  );
}
