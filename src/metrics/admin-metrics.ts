import { Counter, type Registry } from 'prom-client';

/**
 * `tokenwatch_admin_requests_total{route, outcome}`: every admin API and guarded /metrics
 * decision. Both labels are closed sets, pre-initialised to 0 so a rate() sees the first one.
 */
export function adminRequestsCounter(
  registry: Registry,
  routes: readonly string[],
  outcomes: readonly string[],
): Counter<'route' | 'outcome'> {
  const counter = new Counter({
    name: 'tokenwatch_admin_requests_total',
    help: 'Admin API and guarded /metrics requests by route group and outcome (allowed, unauthenticated, forbidden, unavailable).',
    labelNames: ['route', 'outcome'],
    registers: [registry],
  });
  for (const route of routes) for (const outcome of outcomes) counter.inc({ route, outcome }, 0);
  return counter;
}
