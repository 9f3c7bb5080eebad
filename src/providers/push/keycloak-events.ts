import type { FastifyInstance } from 'fastify';

import type { KeycloakConfig } from '../../config/providers-schema.js';
import { parseJsonBody } from '../json-body.js';
import {
  KEYCLOAK_SIGNATURE_HEADER,
  assertKeycloakSignatureHeader,
  verifyKeycloakSignature,
} from '../keycloak-signature.js';
import { normalizeKeycloak } from '../keycloak.js';
import { type PushContext, rawBody, requireBody, requireMediaType } from './push-context.js';

/** Path of the Keycloak events endpoint, under `/v1/providers`. */
export const KEYCLOAK_EVENTS_PATH = '/keycloak/events';

/**
 * Keycloak events pushed by a webhook extension (plain event JSON, arrays of it, or the p2-inc
 * keycloak-events format). The `X-Keycloak-Signature` HMAC is checked over the exact raw bytes
 * before anything is parsed: re-serialised JSON would not match.
 */
export function registerKeycloakEvents(
  f: FastifyInstance,
  cfg: KeycloakConfig & { secret: string },
  ctx: PushContext,
): void {
  const secret = cfg.secret;
  f.post(
    KEYCLOAK_EVENTS_PATH,
    {
      bodyLimit: ctx.bodyLimit,
      // A missing, repeated or malformed signature header is refused before the body is read.
      onRequest: async (request) => {
        assertKeycloakSignatureHeader(request.headers[KEYCLOAK_SIGNATURE_HEADER], {
          algorithm: cfg.signatureAlgorithm,
        });
        return Promise.resolve();
      },
    },
    async (request, reply) => {
      verifyKeycloakSignature(
        rawBody(request),
        request.headers[KEYCLOAK_SIGNATURE_HEADER],
        secret,
        {
          algorithm: cfg.signatureAlgorithm,
        },
      );
      const body = requireBody(request);
      requireMediaType(request, ['application/json']);
      const payload = parseJsonBody(body.toString('utf8'), { maxEvents: ctx.maxEvents });
      const events = normalizeKeycloak(payload, { ...ctx.normalize, maxEvents: ctx.maxEvents });
      const result = await ctx.ingest.ingest(events, 'push');
      return reply.status(200).send({ status: 'accepted', ...result });
    },
  );
}
