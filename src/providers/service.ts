import type { Tracing } from '../telemetry/tracing.js';
import type { FastifyInstance } from 'fastify';
import type { JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

import type { Fingerprinter } from '../audit/fingerprint.js';
import type { ProvidersConfig } from '../config/providers-schema.js';
import type { Config } from '../config/schema.js';
import type { ProviderName } from '../domain/provider-event.js';
import { type ProviderMetrics, createProviderMetrics } from '../metrics/provider-metrics.js';
import {
  EventIngest,
  type IngestLedger,
  type ProviderEventListener,
} from './ingest/event-ingest.js';
import { ReplayGuard } from './ingest/replay-guard.js';
import { SeenEvents } from './ingest/seen-events.js';
import { ReplayStore } from '../audit/replay-store.js';
import { createIssuerKeys } from '../outbound/issuer-keys.js';
import type { NormalizeContext } from './payload-reader.js';
import { CursorStore } from '../audit/cursor-store.js';
import { buildPollLoops } from './poll/poll-loops.js';
import type { PollLoop } from './poll/poll-loop.js';
import { PROVIDER_ROUTE_PREFIX, providerRoutes } from './push/provider-routes.js';

/** Collaborators of {@link createProviderIngest}. */
export interface ProviderIngestOptions {
  config: Readonly<Config>;
  ledger: IngestLedger;
  fingerprinter: Fingerprinter;
  /** The app's registry (`app.metrics.registry`). */
  registry: Registry;
  logger: Logger;
  now?: () => number;
  /** Spans around deliveries. */
  tracing?: Tracing;
}

/** Identity-provider ingestion: push endpoints, catch-up pollers, one deduplicating path. */
export interface ProviderIngest {
  /** Providers with a config section. */
  readonly providers: readonly ProviderName[];
  readonly metrics: ProviderMetrics;
  /**
   * Registers the push endpoints under `/v1/providers` as an encapsulated plugin. Call before
   * the server listens (or is first injected into).
   */
  register(fastify: FastifyInstance): void;
  /** Rebuilds the dedup set from the ledger and starts the pollers. Idempotent. */
  start(): void;
  /** Runs one catch-up poll of `provider` now (tests, admin); resolves when it finished. */
  pollNow(provider: ProviderName): Promise<void>;
  /**
   * Called after each new provider event committed, with its audit seq (duplicates are not
   * repeated). Listener errors are logged, never fail a delivery. Returns the unsubscribe.
   */
  onEvent(listener: ProviderEventListener): () => void;
  /** Stops the pollers (waiting for a run in progress to commit) and closes the cursor store. */
  close(): Promise<void>;
}

const PROVIDER_NAMES: readonly ProviderName[] = ['okta', 'auth0', 'keycloak', 'ssf', 'oidc'];

/** Builds the provider ingestion service from config and the app's ledger, keys and registry. */
export function createProviderIngest(options: ProviderIngestOptions): ProviderIngest {
  const { config, ledger, logger } = options;
  const now = options.now ?? Date.now;
  const p: ProvidersConfig = config.providers;
  const providers = PROVIDER_NAMES.filter((name) => p[name] !== undefined);
  const polled = (['okta', 'auth0', 'keycloak'] as const).filter((n) => p[n]?.poll?.enabled);
  const metrics = createProviderMetrics(options.registry, providers, polled);
  const log = logger.child({ component: 'providers' });

  const ingest = new EventIngest({
    tracing: options.tracing,
    ledger,
    seen: new SeenEvents({
      windowMs: p.dedup.windowHours * 3_600_000,
      maxEntries: p.dedup.maxEntries,
    }),
    metrics,
    logger: log,
    now,
  });
  const normalize: NormalizeContext = {
    fingerprinter: options.fingerprinter,
    now,
    maxEvents: p.maxEvents,
  };
  const ssfKeys: JWTVerifyGetKey | undefined = p.ssf
    ? createIssuerKeys({ issuer: p.ssf.issuer, discovery: p.ssf.discovery, jwksUri: p.ssf.jwksUri })
    : undefined;
  const oidcKeys: JWTVerifyGetKey | undefined = p.oidc
    ? createIssuerKeys({ issuer: p.oidc.issuer, discovery: 'oidc', clientId: p.oidc.clientId })
    : undefined;

  // Durable jti replay protection, on its own connection to the ledger file.
  const replayStore =
    p.ssf || p.oidc ? new ReplayStore({ path: config.audit.path, now }) : undefined;
  const replay = replayStore ? new ReplayGuard(replayStore, options.fingerprinter) : undefined;

  let cursors: CursorStore | undefined;
  let loops: PollLoop[] = [];
  let started = false;
  let closed = false;

  return {
    providers,
    metrics,
    register(fastify) {
      void fastify.register(providerRoutes, {
        prefix: PROVIDER_ROUTE_PREFIX,
        providers: p,
        ctx: {
          ingest,
          normalize,
          bodyLimit: p.bodyLimit ?? config.server.bodyLimit,
          maxEvents: p.maxEvents,
          now,
          logger: log,
          replay,
        },
        metrics,
        ssfKeys,
        oidcKeys,
        appendRejection: (input) => ledger.append(input),
        refusals: {
          perWindow: p.refusals.perSource,
          windowMs: p.refusals.windowSeconds * 1000,
          total: p.refusals.total,
        },
      });
    },
    start() {
      if (started || closed) return;
      started = true;
      ingest.rebuild();
      if (polled.length === 0) return;
      cursors = new CursorStore(config.audit.path);
      loops = buildPollLoops(p, { cursors, ingest, normalize, now, logger: log, metrics });
      for (const loop of loops) loop.start();
    },
    async pollNow(provider) {
      await Promise.all(loops.filter((l) => l.provider === provider).map((l) => l.runNow()));
    },
    onEvent: (listener) => ingest.onEvent(listener),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(loops.map((l) => l.close()));
      loops = [];
      cursors?.close();
      replayStore?.close();
    },
  };
}
