import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { isTokenwatchError } from '../errors.js';

export interface HealthSource {
  /** Reasons the service is not ready (empty = ready). */
  notReadyReasons(): string[];
  metricsText(): Promise<string>;
  metricsContentType: string;
  /**
   * Optional parts that work or not without making the service unready (e.g. read sampling);
   * undefined when none is configured.
   */
  readyDetails?(): Record<string, unknown> | undefined;
}

/** Server-side time limits (config `server.timeouts`), milliseconds. */
export interface HttpTimeouts {
  /** Whole request, headers and body, received within this (else 408 and the socket closes). */
  requestMs: number;
  /** Request headers received within this. */
  headersMs: number;
  /** Idle keep-alive connection closed after this. */
  keepAliveMs: number;
  /** Socket closed after this long without any traffic (either direction). */
  idleMs: number;
}

export interface HttpOptions {
  bodyLimit: number;
  logger: Logger;
  timeouts: HttpTimeouts;
}

/** How often Node checks requestTimeout / headersTimeout (its default, 30 s, defeats them). */
const CHECK_INTERVAL_MS = 500;

/**
 * The HTTP face of tokenwatch: /metrics, /healthz, /readyz, and later the webhooks and admin
 * API as plugins. One error handler maps TokenwatchError codes to statuses and typed bodies;
 * a client never sees a stack trace.
 */
export function buildHttp(health: HealthSource, options: HttpOptions): FastifyInstance {
  const t = options.timeouts;
  const app = Fastify({
    // A slow or stalled client (slowloris, a body that never completes) holds a socket and a
    // request object; every phase is bounded. Fastify's own defaults leave request and
    // connection timeouts at 0 (none).
    connectionTimeout: t.idleMs,
    keepAliveTimeout: t.keepAliveMs,
    requestTimeout: t.requestMs,
    http: {
      headersTimeout: t.headersMs,
      requestTimeout: t.requestMs,
      keepAliveTimeout: t.keepAliveMs,
      connectionsCheckingInterval: Math.min(CHECK_INTERVAL_MS, t.headersMs),
    },
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    // Keys and tokens never appear in URLs we log; still, keep request ids short and opaque.
    requestIdHeader: false,
  });

  app.setErrorHandler((err, request, reply) => {
    if (isTokenwatchError(err)) {
      if (err.status >= 500)
        request.log.error({ code: err.code, err: err.message }, 'request failed');
      return reply
        .status(err.status)
        .send({ error: { code: err.code, message: err.message, ...(err.details ?? {}) } });
    }
    const e = err as { statusCode?: number; code?: string; message?: string };
    const status = typeof e.statusCode === 'number' && e.statusCode >= 400 ? e.statusCode : 500;
    if (status >= 500) request.log.error({ err: e.message }, 'request failed');
    const code =
      status === 413
        ? 'ERR_WEBHOOK_TOO_LARGE'
        : status === 415
          ? 'ERR_WEBHOOK_CONTENT_TYPE'
          : status < 500
            ? 'ERR_BAD_REQUEST'
            : 'ERR_INTERNAL';
    return reply.status(status).send({
      error: { code, message: status < 500 ? (e.message ?? 'bad request') : 'internal error' },
    });
  });

  app.setNotFoundHandler((_request, reply) => {
    return reply.status(404).send({ error: { code: 'ERR_NOT_FOUND', message: 'no such route' } });
  });

  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }));

  app.get('/readyz', (_request, reply) => {
    const reasons = health.notReadyReasons();
    const details = health.readyDetails?.();
    if (reasons.length > 0)
      return reply.status(503).send({ status: 'not_ready', reasons, ...(details && { details }) });
    return reply.send({ status: 'ready', ...(details && { details }) });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await health.metricsText();
    return reply.header('content-type', health.metricsContentType).send(text);
  });

  return app as unknown as FastifyInstance;
}
