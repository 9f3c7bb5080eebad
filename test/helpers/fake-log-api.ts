import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Loopback fakes of the provider log APIs the pollers read (node:http on 127.0.0.1:0), speaking
 * their real pagination and rate-limit protocols: Okta `Link: <…>; rel="next"` with `after`,
 * Auth0 `from`/`take`, Keycloak `first`/`max` newest first, and 429 with an epoch-seconds reset.
 */

export interface FakeRequest {
  url: URL;
  authorization: string | undefined;
  /** Arrival time, unix ms. */
  at: number;
  status: number;
}

export interface FakeReply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface FakeApi {
  readonly base: string;
  readonly requests: FakeRequest[];
  /** Replies served before the normal handler, in order (429s, 500s). */
  readonly injected: FakeReply[];
  close(): Promise<void>;
}

export type FakeHandler = (url: URL, authorization: string | undefined) => FakeReply;

export async function startFakeApi(handler: FakeHandler): Promise<FakeApi> {
  const requests: FakeRequest[] = [];
  const injected: FakeReply[] = [];
  let base = '';
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', base);
    const authorization = req.headers.authorization;
    const reply = injected.shift() ?? handler(url, authorization);
    requests.push({ url, authorization, at: Date.now(), status: reply.status });
    res.writeHead(reply.status, { 'content-type': 'application/json', ...(reply.headers ?? {}) });
    res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    requests,
    injected,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A 429 whose `header` (e.g. X-Rate-Limit-Reset) is the next whole epoch second + 1. */
export function rateLimited(header = 'X-Rate-Limit-Reset'): FakeReply & { resetMs: number } {
  const reset = Math.ceil(Date.now() / 1000) + 1;
  return {
    status: 429,
    headers: { [header]: String(reset) },
    body: { errorCode: 'E0000047', errorSummary: 'API call exceeded rate limit' },
    resetMs: reset * 1000,
  };
}

/** Okta System Log: ascending by `published`; `after` is the uuid of the last event read. */
export function oktaLogs(events: () => Record<string, unknown>[], token: string): FakeHandler {
  return (url, authorization) => {
    if (authorization !== `SSWS ${token}`) return { status: 401, body: { errorCode: 'E0000011' } };
    if (url.pathname !== '/api/v1/logs') return { status: 404 };
    const all = events();
    const limit = Number(url.searchParams.get('limit') ?? 100);
    const after = url.searchParams.get('after');
    const since = url.searchParams.get('since');
    let start = 0;
    if (after !== null) start = all.findIndex((e) => e.uuid === after) + 1;
    else if (since !== null) {
      start = all.findIndex((e) => Date.parse(String(e.published)) >= Date.parse(since));
      if (start < 0) start = all.length;
    }
    const page = all.slice(start, start + limit);
    const uuidOf = (e: Record<string, unknown> | undefined) =>
      typeof e?.uuid === 'string' ? e.uuid : undefined;
    const last = uuidOf(page.at(-1)) ?? after ?? uuidOf(all[start - 1]);
    const next = new URL('/api/v1/logs', url);
    next.searchParams.set('limit', String(limit));
    if (last !== undefined) next.searchParams.set('after', last);
    else if (since !== null) next.searchParams.set('since', since);
    // Polling semantics: the next link is always present, also on an empty page.
    return {
      status: 200,
      headers: { link: `<${url.href}>; rel="self", <${next.href}>; rel="next"` },
      body: page,
    };
  };
}

/** Auth0 Management API logs: ascending by log_id; `from` exclusive. */
export function auth0Logs(
  logs: () => Record<string, unknown>[],
  authorized: (authorization: string | undefined) => boolean,
): FakeHandler {
  return (url, authorization) => {
    if (!authorized(authorization)) return { status: 401, body: { statusCode: 401 } };
    if (url.pathname !== '/api/v2/logs') return { status: 404 };
    const all = logs();
    const take = Number(url.searchParams.get('take') ?? 50);
    const from = url.searchParams.get('from');
    const start = from === null ? 0 : all.findIndex((l) => l.log_id === from) + 1;
    return { status: 200, body: all.slice(start, start + take) };
  };
}

/** Keycloak admin events: newest first, `first`/`max` offsets, `dateFrom` a day filter. */
export function keycloakEvents(
  realm: string,
  streams: { events: () => Record<string, unknown>[]; admin: () => Record<string, unknown>[] },
  token: string,
): FakeHandler {
  return (url, authorization) => {
    if (authorization !== `Bearer ${token}`) return { status: 401 };
    const prefix = `/admin/realms/${realm}/`;
    if (!url.pathname.startsWith(prefix)) return { status: 404 };
    const stream = url.pathname.slice(prefix.length);
    const source =
      stream === 'events'
        ? streams.events()
        : stream === 'admin-events'
          ? streams.admin()
          : undefined;
    if (!source) return { status: 404 };
    const dateFrom = url.searchParams.get('dateFrom');
    const fromMs = dateFrom === null ? 0 : Date.parse(`${dateFrom}T00:00:00Z`);
    const sorted = source
      .filter((e) => Number(e.time) >= fromMs)
      .sort((a, b) => Number(b.time) - Number(a.time));
    const first = Number(url.searchParams.get('first') ?? 0);
    const max = Number(url.searchParams.get('max') ?? 100);
    return { status: 200, body: sorted.slice(first, first + max) };
  };
}
