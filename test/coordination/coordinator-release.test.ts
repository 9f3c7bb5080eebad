import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { CoordinationConfig } from '../../src/config/coordination-schema.js';
import { Coordinator, type OwnershipHooks } from '../../src/coordination/coordinator.js';
import type { AcquireResult, LeaseStore } from '../../src/coordination/lease.js';
import type { InstanceRegistry } from '../../src/coordination/registry.js';
import type { CoordinationMetrics } from '../../src/metrics/coordination-metrics.js';

/**
 * The coordinator's lease renewal while it releases a node, against an in-memory lease store
 * with the real store's compare-and-set semantics. A release as `removed` (the node left the
 * topology; nobody else acquires it) is renewed while its hook runs, so the owner still records
 * what the dead node's watcher applies meanwhile; a handover's is not (its fence bounds a stuck
 * release). Leases of 1.5 s (fence 1.4 s after a renewal, renewals every 0.3 s) and a release
 * hook held 3 s: without renewals the fence fires during it.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const noop = (): void => undefined;
async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await sleep(10);
}

function setup(releaseMs: number, renewEveryMs = 300) {
  let nodes = ['n1', 'n2'];
  let live = ['i1'];
  let renewedAt = 0;
  const server = new Map<string, string>();
  const log: string[] = [];
  let epoch = 0;
  const leases = {
    instanceId: 'i1',
    acquire: (n: string): Promise<AcquireResult> => {
      if (server.has(n)) return Promise.resolve({ acquired: false, holder: null });
      epoch++;
      server.set(n, `i1:${epoch}`);
      return Promise.resolve({ acquired: true, epoch, previous: null });
    },
    renew: (n: string, e: number) => {
      renewedAt = Date.now();
      return Promise.resolve(server.get(n) === `i1:${e}`);
    },
    release: (n: string, e: number) => {
      if (server.get(n) === `i1:${e}`) server.delete(n);
      return Promise.resolve(true);
    },
    remainingMs: () => Promise.resolve(-2),
  } as unknown as LeaseStore;
  const registry = {
    refresh: () => Promise.resolve(live),
    live: () => Promise.resolve(live),
    leave: () => Promise.resolve(),
  } as unknown as InstanceRegistry;
  const gauge = { set: noop, inc: noop, remove: noop };
  const metrics = {
    ownedNodes: gauge,
    leaseEpoch: gauge,
    leaseAge: gauge,
    takeovers: gauge,
    fencings: gauge,
    standbyEvents: gauge,
    standbyDropped: gauge,
    replayed: gauge,
    markerRejected: gauge,
    addNode: noop,
  } as unknown as CoordinationMetrics;
  const hooks: OwnershipHooks = {
    acquired: (a) => {
      a.goLive();
      return Promise.resolve();
    },
    releasing: async (r) => {
      log.push(`releasing ${r.node} ${r.reason}`);
      await sleep(r.reason === 'shutdown' ? 10 : releaseMs);
      r.stopRecording();
      log.push(`released ${r.node}`);
    },
    fenced: (f) => log.push(`fenced ${f.node} ${f.reason}`),
  };
  const c = new Coordinator({
    config: {
      enabled: true,
      leaseMs: 1500,
      safetyMs: 100,
      renewEveryMs,
    } as CoordinationConfig,
    leases,
    registry,
    nodes: () => nodes,
    hooks,
    metrics,
    logger: pino({ level: 'silent' }),
    now: () => Date.now(),
  });
  return {
    c,
    log,
    setNodes: (n: string[]) => (nodes = n),
    setLive: (l: string[]) => (live = l),
    renewedAt: () => renewedAt,
  };
}

describe('Coordinator: renewal during a release', () => {
  it('renews a node released as removed while its release runs (no fence)', async () => {
    const s = setup(3000);
    await s.c.start();
    await sleep(400);
    expect(s.c.roles()).toEqual({ n1: 'owner', n2: 'owner' });
    s.setNodes(['n2']);
    await s.c.tick();
    expect(s.log).toEqual(['releasing n1 removed', 'released n1']);
    await s.c.close();
  }, 15_000);

  it('keeps renewing the held leases while close() waits for a removed release', async () => {
    const s = setup(3000);
    await s.c.start();
    await sleep(400);
    s.setNodes(['n2']);
    const round = s.c.tick();
    await sleep(100);
    await s.c.close();
    await round;
    expect(s.log.filter((l) => l.startsWith('fenced'))).toEqual([]);
    expect(s.log).toContain('released n1');
    expect(s.log).toContain('releasing n2 shutdown');
  }, 15_000);

  it('renews at once when close() begins, not a period later (renewals every 1 s, fence 1.4 s)', async () => {
    const s = setup(3000, 1000);
    await s.c.start();
    await sleep(400);
    s.setNodes(['n2']);
    const round = s.c.tick();
    // Just before the next periodic renewal: waiting another period would pass the fence.
    const since = s.renewedAt();
    await waitUntil(() => s.renewedAt() > since);
    await sleep(900);
    await s.c.close();
    await round;
    expect(s.log.filter((l) => l.startsWith('fenced'))).toEqual([]);
    expect(s.log).toContain('released n1');
  }, 15_000);

  it('does not renew a handover: a release stuck longer than the lease is fenced', async () => {
    const s = setup(3000);
    await s.c.start();
    // Held for longer than a lease (a younger node is not handed over), then another
    // instance joins and is desired for one of the two nodes.
    await sleep(1700);
    s.setLive(['i1', 'i2']);
    await s.c.tick();
    const handedOver = s.log.find((l) => /^releasing n[12] handover$/.test(l))?.split(' ')[1];
    expect(handedOver).toBeDefined();
    expect(s.log).toContain(`fenced ${handedOver} expired`);
    await s.c.close();
  }, 15_000);
});
