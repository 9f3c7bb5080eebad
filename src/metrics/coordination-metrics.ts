import { Counter, Gauge, type Registry } from 'prom-client';

/** Metrics of several instances sharing the watched nodes (issue #20, docs/ha.md). */
export interface CoordinationMetrics {
  ownedNodes: Gauge;
  leaseEpoch: Gauge<'node'>;
  leaseAge: Gauge<'node'>;
  takeovers: Counter<'node'>;
  fencings: Counter<'node'>;
  standbyEvents: Gauge<'node'>;
  standbyDropped: Counter<'node'>;
  replayed: Counter<'node'>;
  /**
   * Marker keys refused on arrival (forged or malformed), by `reason`: `bad_mac` | `malformed`;
   * `committed_bad_mac`: a committed position read at takeover whose tag did not verify.
   */
  markerRejected: Counter<'node' | 'reason'>;
  /** Pre-initialise a node's series (a node watched for the first time). */
  addNode(node: string): void;
}

export interface CoordinationMetricsSources {
  /** Seconds since the last successful acquire/renew, per held node (read at scrape time). */
  leaseAges?: () => Map<string, number>;
}

/**
 * Registered only when `coordination.enabled`: a single instance exports none of them. Node
 * labels are the watched Redis nodes (bounded by the topology).
 */
export function createCoordinationMetrics(
  registry: Registry,
  sources: CoordinationMetricsSources = {},
): CoordinationMetrics {
  const leaseAges = sources.leaseAges;
  const m: Omit<CoordinationMetrics, 'addNode'> = {
    ownedNodes: new Gauge({
      name: 'tokenwatch_coordination_owned_nodes',
      help: 'Watched Redis nodes this instance owns (records as owner) now.',
      registers: [registry],
    }),
    leaseEpoch: new Gauge({
      name: 'tokenwatch_lease_epoch',
      help: 'Fencing epoch of the last lease this instance acquired on the node.',
      labelNames: ['node'],
      registers: [registry],
    }),
    leaseAge: new Gauge({
      name: 'tokenwatch_lease_age_seconds',
      help: 'Seconds since this instance last acquired or renewed its lease on the node (held leases only; renewals every leaseMs/3 keep it low).',
      labelNames: ['node'],
      registers: [registry],
      collect() {
        if (!leaseAges) return;
        this.reset();
        for (const [node, s] of leaseAges()) this.set({ node }, s);
      },
    }),
    takeovers: new Counter({
      name: 'tokenwatch_takeovers_total',
      help: 'Leases this instance acquired on the node after another instance had held it.',
      labelNames: ['node'],
      registers: [registry],
    }),
    fencings: new Counter({
      name: 'tokenwatch_ownership_fenced_total',
      help: 'Times this instance stopped recording as owner of the node because its lease deadline passed or the lease was lost.',
      labelNames: ['node'],
      registers: [registry],
    }),
    standbyEvents: new Gauge({
      name: 'tokenwatch_standby_buffer_events',
      help: 'Token events held in the standby buffer of the node (for a takeover).',
      labelNames: ['node'],
      registers: [registry],
    }),
    standbyDropped: new Counter({
      name: 'tokenwatch_standby_buffer_dropped_total',
      help: 'Token events dropped from the standby buffer of the node (over standby.maxEvents or standby.maxAgeMs); a takeover that would need them records a gap.',
      labelNames: ['node'],
      registers: [registry],
    }),
    replayed: new Counter({
      name: 'tokenwatch_replayed_events_total',
      help: "Token events recorded from the standby buffer at takeover (after the previous owner's committed position).",
      labelNames: ['node'],
      registers: [registry],
    }),
    markerRejected: new Counter({
      name: 'tokenwatch_marker_rejected_total',
      help: 'Keys under the coordination marker prefix written on the node that moved no stream position: bad_mac (no configured HMAC key made its tag: forged, or another key) or malformed; committed_bad_mac: a committed position read at takeover whose tag did not verify (not believed: gap and reconciliation).',
      labelNames: ['node', 'reason'],
      registers: [registry],
    }),
  };
  return {
    ...m,
    addNode(node) {
      m.takeovers.inc({ node }, 0);
      m.fencings.inc({ node }, 0);
      m.standbyEvents.set({ node }, 0);
      m.standbyDropped.inc({ node }, 0);
      m.replayed.inc({ node }, 0);
      m.markerRejected.inc({ node, reason: 'bad_mac' }, 0);
      m.markerRejected.inc({ node, reason: 'malformed' }, 0);
      m.markerRejected.inc({ node, reason: 'committed_bad_mac' }, 0);
    },
  };
}
