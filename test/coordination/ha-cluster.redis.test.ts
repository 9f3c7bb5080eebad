import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/record.js';
import { startCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { waitFor, type Harness } from '../helpers/app-harness.js';
import { ownedBy, startClusterInstance } from './cluster-instance.js';

/**
 * Issue #20 on a real Redis Cluster (3 masters + 3 replicas): three instances own one master
 * each; when one stops, the two others cover its master without a gap; a new instance gets one
 * master back. Every token write is recorded exactly once (by node/pos) across the ledgers.
 */
let cluster: RedisCluster;
const running: Harness[] = [];
/** Token records of stopped instances (their ledgers are closed). */
const kept: { id: string; records: AuditRecord[] }[] = [];

beforeAll(async () => {
  cluster = await startCluster(3, 1);
}, 60_000);
afterAll(async () => {
  for (const h of running) await h.stop().catch(() => undefined);
  await cluster?.stop();
});

function start(id: string): Harness {
  const h = startClusterInstance(cluster, id, {
    hmacKey: 'shared-fingerprint-key-for-the-cluster-test',
  });
  running.push(h);
  return h;
}

const owned = ownedBy;

async function spread(hs: Harness[], expected: number[]): Promise<void> {
  await waitFor(
    () =>
      JSON.stringify(hs.map((h) => owned(h).length).sort()) ===
      JSON.stringify([...expected].sort()),
    30_000,
    `ownership spread ${expected.join('/')}`,
  );
}

const written = (): Map<string, AuditRecord> => {
  const out = new Map<string, AuditRecord>();
  const all = [
    ...kept.flatMap((k) => k.records.map((r) => ({ id: k.id, r }))),
    ...running.flatMap((h) =>
      h.app.ledger.list({ type: 'token.written' }).map((r) => ({ id: h.dbPath, r })),
    ),
  ];
  for (const { id, r } of all) {
    const key =
      typeof r.attrs.pos === 'string' ? `${String(r.attrs.node)}/${r.attrs.pos}` : `${id}#${r.seq}`;
    out.set(key, r);
  }
  return out;
};

async function writeTokens(prefix: string, count: number): Promise<void> {
  const c = cluster.client();
  for (let i = 0; i < count; i++) await c.set(`oauth:access:${prefix}-${i}`, 'v', 'EX', 600);
}

async function allRecorded(total: number): Promise<void> {
  await waitFor(() => written().size >= total, 30_000, `${total} writes recorded`);
  const w = written();
  expect(w.size).toBe(total);
  expect(new Set([...w.values()].map((r) => r.fingerprint)).size).toBe(total);
}

describe('three instances on a Redis Cluster', () => {
  it("spread the masters 1/1/1, cover a stopped instance's master, and take one back from a new instance", async () => {
    const hs = [start('c-1'), start('c-2'), start('c-3')];
    for (const h of hs) await h.app.whenReady(30_000);
    await spread(hs, [1, 1, 1]);
    await writeTokens('a', 60);
    await allRecorded(60);

    // One instance stops (graceful: it hands its master over through a final marker).
    const gone = hs[0] as Harness;
    const goneRecords: AuditRecord[] = [];
    gone.app.onCommitted((batch) => {
      for (const c of batch)
        if (c.input.type === 'token.written')
          goneRecords.push({
            seq: c.seq,
            time: c.input.time,
            source: c.input.source,
            type: c.input.type,
            kind: c.input.kind ?? null,
            fingerprint: c.input.fingerprint ?? null,
            attrs: c.input.attrs ?? {},
          });
    });
    for (const r of gone.app.ledger.list({ type: 'token.written' })) goneRecords.push(r);
    running.splice(running.indexOf(gone), 1);
    await gone.stop();
    kept.push({ id: 'c-1', records: goneRecords });
    await spread(running, [1, 2]);
    await writeTokens('b', 60);
    await allRecorded(120);

    // A new instance joins: the spread is 1/1/1 again, by graceful handover.
    const joined = start('c-4');
    await joined.app.whenReady(30_000);
    await spread(running, [1, 1, 1]);
    await writeTokens('c', 60);
    await allRecorded(180);

    // Handovers left no blind spot (checked before the master failover below, which is one).
    for (const h of running) {
      const gaps = h.app.ledger
        .list({ type: 'keyspace.gap' })
        .filter((g) => String(g.attrs.reason).startsWith('ownership_'));
      expect(gaps).toEqual([]);
    }

    // A Redis master dies: its replica is promoted, watched, owned by one instance, and the
    // promotion's blind spot is recorded (once) and reconciled.
    const victim = (await cluster.masters())[0] as { port: number };
    await cluster.nodes.find((n) => n.port === victim.port)?.halt(true);
    await waitFor(() => cluster.failedOver(victim.port), 30_000, 'replica promoted');
    await waitFor(
      () => running.every((h) => !h.app.keyspace.nodeLabels().includes(`127.0.0.1:${victim.port}`)),
      30_000,
      'watchers follow the topology',
    );
    await spread(running, [1, 1, 1]);
    await writeTokens('d', 60);
    await allRecorded(240);
    await waitFor(
      () =>
        running.some((h) =>
          h.app.ledger
            .list({ type: 'keyspace.gap' })
            .some((g) => g.attrs.reason === 'topology_change'),
        ),
      30_000,
      'the failover gap is recorded',
    );
    // Every instance's inventory (owner or standby) equals the cluster's keys.
    const keys = await cluster.countKeys('oauth:access:*');
    expect(keys).toBe(240);
    for (const h of running) {
      await waitFor(
        () => h.app.keyspace.dueCounts().access_token?.live === keys,
        30_000,
        'inventory equals the cluster',
      );
    }

    // No handover-gap check here: the leases live on the Cluster itself, and the killed master
    // may have held some (docs/ha.md): an owner whose lease key was unreachable during the
    // failover fences itself, and its takeover may be a recorded gap. Nothing was missed above.
  });
});
