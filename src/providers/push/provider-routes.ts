import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JWTVerifyGetKey } from 'jose';

import type { AuditInput } from '../../audit/record.js';
import type { ProvidersConfig } from '../../config/providers-schema.js';
import type { ProviderName } from '../../domain/provider-event.js';
import type { ProviderMetrics } from '../../metrics/provider-metrics.js';
import { RefusalLimiter } from '../../http/refusal-limiter.js';
import { describeRefused } from '../../http/refused-request.js';
import {
  type Rejection,
  rejectionAuditInput,
  rejectionSummaryAuditInput,
} from '../ingest/audit-inputs.js';
import { KEYCLOAK_SIGNATURE_HEADER } from '../keycloak-signature.js';
import { AUTH0_LOGS_PATH, registerAuth0Logs } from './auth0-logs.js';
import { BACKCHANNEL_LOGOUT_PATH, registerBackchannelLogout } from './backchannel-logout.js';
import { KEYCLOAK_EVENTS_PATH, registerKeycloakEvents } from './keycloak-events.js';
import { OKTA_HOOK_PATH, registerOktaHook } from './okta-hook.js';
import type { PushContext } from './push-context.js';
import { type ErrorDialect, classify, rejectionBody } from './rejection.js';
import { SSF_PUSH_PATH, registerSsfPush } from './ssf-push.js';

/** URL prefix of every provider endpoint. */
export const PROVIDER_ROUTE_PREFIX = '/v1/providers';

/** Options of the {@link providerRoutes} plugin. */
export interface ProviderRoutesOptions {
  providers: ProvidersConfig;
  ctx: PushContext;
  metrics: ProviderMetrics;
  /** Key resolvers of the JWT-based providers (present when configured). */
  ssfKeys: JWTVerifyGetKey | undefined;
  oidcKeys: JWTVerifyGetKey | undefined;
  /** Where `provider.rejected` records go (fire-and-forget: a refusal never waits on disk). */
  appendRejection: (input: AuditInput) => void;
  /** Refusals recorded one by one per provider, source address and window (then a summary). */
  refusals: { perWindow: number; windowMs: number; total?: number };
}

interface RouteMeta {
  provider: ProviderName;
  dialect: ErrorDialect;
}

/**
 * The push endpoints as one encapsulated fastify plugin. Inside it every body is kept raw (one
 * catch-all buffer parser: signatures are computed over bytes, and each route checks its own
 * media type), and one error handler answers in each protocol's dialect, counts the rejection and
 * leaves a `provider.rejected` record (names, lengths and fingerprints only: see
 * http/refused-request.ts), up to a budget per provider, source and window; beyond it refusals
 * are only counted and stated in one `provider.rejected_suppressed` record per source and window
 * (the admin model: a flood cannot grow the ledger faster than the budget). Neither leaks to the
 * other routes of the server.
 * Providers without configuration register nothing, so their paths answer 404.
 */
export async function providerRoutes(f: FastifyInstance, o: ProviderRoutesOptions): Promise<void> {
  const { providers: p, ctx } = o;
  const meta = new Map<string, RouteMeta>();
  const route = (path: string, provider: ProviderName, dialect: ErrorDialect): void => {
    meta.set(`${PROVIDER_ROUTE_PREFIX}${path}`, { provider, dialect });
  };

  const limiters = new Map<ProviderName, RefusalLimiter>();
  const limiterOf = (provider: ProviderName): RefusalLimiter => {
    let l = limiters.get(provider);
    if (!l) {
      l = new RefusalLimiter({
        ...o.refusals,
        maxSources: 10_000,
        now: ctx.now,
        onSummary: (summary) =>
          o.appendRejection(rejectionSummaryAuditInput(provider, summary, ctx.now())),
      });
      limiters.set(provider, l);
    }
    return l;
  };
  const sweep = setInterval(() => {
    for (const l of limiters.values()) l.sweep();
  }, o.refusals.windowMs);
  sweep.unref();
  // Runs before the ledger closes (app.stop closes HTTP first): nothing counted goes unstated.
  f.addHook('onClose', (_instance, done) => {
    clearInterval(sweep);
    try {
      for (const l of limiters.values()) l.flush();
    } catch (err) {
      ctx.logger.warn({ err: (err as Error).message }, 'suppressed refusals not recorded');
    }
    done();
  });
  const credentialHeaders = [
    ...(p.okta?.header !== undefined ? [p.okta.header] : []),
    KEYCLOAK_SIGNATURE_HEADER,
  ];

  f.removeAllContentTypeParsers();
  f.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    done(null, body);
  });

  f.setErrorHandler((err, request, reply) => {
    const m = meta.get(request.routeOptions.url ?? '');
    const c = classify(err, m?.dialect);
    let recorded = true;
    if (m) {
      o.metrics.rejections.inc({ provider: m.provider, reason: c.reason });
      recorded = limiterOf(m.provider).admit(request.socket.remoteAddress ?? 'unknown', c.reason);
      if (recorded) record(o, request, m.provider, c, credentialHeaders);
      if (m.dialect === 'oauth') void reply.header('cache-control', 'no-store');
    }
    // Logs follow the ledger's budget: a flood beyond it is only counted (and logged at debug).
    const log =
      c.status >= 500
        ? request.log.error.bind(request.log)
        : recorded
          ? request.log.info.bind(request.log)
          : request.log.debug.bind(request.log);
    // Never the message: parser messages can quote the body.
    log(
      { provider: m?.provider, code: c.code, reason: c.reason, status: c.status },
      'webhook rejected',
    );
    return reply.status(c.status).send(rejectionBody(c, m?.dialect ?? 'typed'));
  });

  if (p.okta?.secret !== undefined) {
    registerOktaHook(f, { ...p.okta, secret: p.okta.secret }, ctx);
    route(OKTA_HOOK_PATH, 'okta', 'typed');
  }
  if (p.auth0?.token !== undefined) {
    registerAuth0Logs(f, { ...p.auth0, token: p.auth0.token }, ctx);
    route(AUTH0_LOGS_PATH, 'auth0', 'typed');
  }
  if (p.keycloak?.secret !== undefined) {
    registerKeycloakEvents(f, { ...p.keycloak, secret: p.keycloak.secret }, ctx);
    route(KEYCLOAK_EVENTS_PATH, 'keycloak', 'typed');
  }
  if (p.ssf && o.ssfKeys) {
    registerSsfPush(f, p.ssf, o.ssfKeys, ctx);
    route(SSF_PUSH_PATH, 'ssf', 'set');
  }
  if (p.oidc && o.oidcKeys) {
    registerBackchannelLogout(f, p.oidc, o.oidcKeys, ctx);
    route(BACKCHANNEL_LOGOUT_PATH, 'oidc', 'oauth');
  }
  return Promise.resolve();
}

function record(
  o: ProviderRoutesOptions,
  request: FastifyRequest,
  provider: ProviderName,
  c: { reason: Rejection['reason']; code: string; status: number },
  credentialHeaders: readonly string[],
): void {
  try {
    const rejection: Rejection = {
      provider,
      reason: c.reason,
      code: c.code,
      status: c.status,
      request: describeRefused(request, {
        fingerprint: (v) => o.ctx.normalize.fingerprinter.of(v),
        credentialHeaders,
        body: Buffer.isBuffer(request.body) ? request.body : undefined,
      }),
    };
    o.appendRejection(rejectionAuditInput(rejection, o.ctx.now()));
  } catch (err) {
    // The ledger closed under us (shutdown): the reply still goes out.
    request.log.warn({ err: (err as Error).message }, 'rejection record not written');
  }
}
