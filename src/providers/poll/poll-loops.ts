import type { Logger } from 'pino';

import type { PollAuthConfig, ProvidersConfig } from '../../config/providers-schema.js';
import type { ProviderName } from '../../domain/provider-event.js';
import type { ProviderMetrics } from '../../metrics/provider-metrics.js';
import type { EventIngest } from '../ingest/event-ingest.js';
import { type ApiAuthDefaults, createApiAuth } from '../../outbound/api-auth.js';
import type { NormalizeContext } from '../payload-reader.js';
import { auth0PollRun } from './auth0-poller.js';
import type { CursorStore } from '../../audit/cursor-store.js';
import { keycloakPollRun } from './keycloak-poller.js';
import { oktaPollRun } from './okta-poller.js';
import { PageFetcher } from './page-fetcher.js';
import { type PollDeps, trimBase } from './poll-deps.js';
import { PollLoop, type PollRun, pollErrorReason } from './poll-loop.js';

/** What {@link buildPollLoops} wires into each poller. */
export interface PollLoopsDeps {
  cursors: CursorStore;
  ingest: EventIngest;
  normalize: NormalizeContext;
  now: () => number;
  logger: Logger;
  metrics: ProviderMetrics;
}

interface PollCommon {
  enabled: boolean;
  intervalSeconds: number;
  baseUrl: string;
  auth: PollAuthConfig;
  maxBackoffSeconds: number;
}

/** One {@link PollLoop} per provider whose `poll` section is enabled. */
export function buildPollLoops(p: ProvidersConfig, deps: PollLoopsDeps): PollLoop[] {
  const loops: PollLoop[] = [];
  const add = (
    provider: ProviderName,
    cfg: PollCommon,
    defaults: ApiAuthDefaults,
    make: (d: PollDeps) => PollRun,
  ): void => {
    const auth = createApiAuth(cfg.auth, defaults, deps.now);
    // Each run gets a fetcher bound to the loop's abort signal.
    const run: PollRun = (signal) =>
      make({
        ...deps,
        onRefused: (err) => deps.metrics.pollErrors.inc({ provider, reason: pollErrorReason(err) }),
        fetcher: new PageFetcher({
          provider,
          auth,
          target: { base: new URL(trimBase(cfg.baseUrl)) },
          maxBackoffMs: cfg.maxBackoffSeconds * 1000,
          signal,
          logger: deps.logger,
          maxEvents: Math.max(deps.normalize.maxEvents ?? 10_000, 1000),
          now: deps.now,
        }),
      })(signal);
    loops.push(
      new PollLoop({
        provider,
        intervalMs: cfg.intervalSeconds * 1000,
        run,
        metrics: deps.metrics,
        logger: deps.logger,
      }),
    );
  };

  const okta = p.okta?.poll;
  if (okta?.enabled) {
    // OAuth for Okta: the org authorization server, scope okta.logs.read.
    add(
      'okta',
      okta,
      { staticScheme: 'SSWS', issuer: trimBase(okta.baseUrl), scope: 'okta.logs.read' },
      (d) => oktaPollRun(okta, d),
    );
  }
  const auth0 = p.auth0?.poll;
  if (auth0?.enabled) {
    const base = trimBase(auth0.baseUrl);
    // Auth0 Management API tokens: issuer with a trailing slash, audience .../api/v2/.
    add(
      'auth0',
      auth0,
      { staticScheme: 'Bearer', issuer: `${base}/`, audience: `${base}/api/v2/` },
      (d) => auth0PollRun(auth0, d),
    );
  }
  const kc = p.keycloak?.poll;
  if (kc?.enabled) {
    const realm = encodeURIComponent(kc.tokenRealm ?? kc.realm);
    add(
      'keycloak',
      kc,
      { staticScheme: 'Bearer', issuer: `${trimBase(kc.baseUrl)}/realms/${realm}` },
      (d) => keycloakPollRun(kc, d),
    );
  }
  return loops;
}
