import { describe, expect, it } from 'vitest';
import { keySlot } from '../../src/keyspace/cluster-slot.js';
import { waitFor, type Harness } from '../helpers/app-harness.js';
import { slotRanges } from '../helpers/redis-cluster.js';
import { clusterWithCoordination, label, ownedBy } from './cluster-instance.js';

/**
 * A Cluster master stops answering (SIGSTOP: sockets open, look-ups never answered) and fails
 * over. Its owner releases it as `removed`, and that release waits for the master's watcher to
 * apply what it received (up to 2 s for look-ups the stopped master never answers): longer than
 * a short lease's fence (leaseMs 1500: 1 s after the last renewal), and a node being released
 * is not renewed. Fenced meanwhile, the owner must still record the master's `node_removed` gap
 * (nobody acquires a node that left the topology; it is the last owner's to record): before,
 * the fence dropped it from the owner's last-held nodes, and every instance withheld the gap.
 */
const fixture = clusterWithCoordination('shared-fingerprint-key-for-the-fence-test');

describe('a Cluster master released as removed after its owner was fenced', () => {
  it("records the master's node_removed gap in its last owner's ledger", async () => {
    const cluster = fixture.cluster();
    const hs = ['r-1', 'r-2'].map((id) => fixture.start(id, 1500));
    for (const h of hs) await h.app.whenReady(30_000);
    const victim = (await cluster.masters())[0] as { port: number; slots: string[] };
    await waitFor(
      () => hs.some((h) => ownedBy(h).includes(label(victim.port))),
      30_000,
      'the victim owned',
    );
    const last = hs.find((h) => ownedBy(h).includes(label(victim.port))) as Harness;
    const ranges = slotRanges(victim.slots);
    const keys: string[] = [];
    for (let i = 0; keys.length < 2000; i++) {
      const key = `oauth:access:rf-${i}`;
      const slot = keySlot(key);
      if (ranges.some(([a, b]) => slot >= a && slot <= b)) keys.push(key);
    }
    // Writes under way while the master stops: look-ups of its watcher stay unanswered.
    const client = cluster.client();
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i = (i + 1) % keys.length)
        await client.set(keys[i] as string, 'v', 'EX', 600).catch(() => undefined);
    })();
    await waitFor(
      () => last.app.ledger.list({ type: 'token.written' }).length >= 200,
      30_000,
      'writes recorded',
    );
    cluster.nodes.find((n) => n.port === victim.port)?.signal('SIGSTOP');
    stop = true;
    await waitFor(() => cluster.failedOver(victim.port), 30_000, 'replica promoted');
    await Promise.race([writer, new Promise((r) => setTimeout(r, 5000))]);

    const records = (type: string) =>
      last.app.ledger.list({ type }).filter((r) => r.attrs.node === label(victim.port));
    await waitFor(() => records('ownership.released').length > 0, 30_000, 'released');
    await waitFor(
      () => records('keyspace.gap').some((g) => g.attrs.reason === 'node_removed'),
      30_000,
      "the node_removed gap in the last owner's ledger",
    ).catch(() => undefined);
    const fenced = records('ownership.fenced').length > 0;
    expect(
      records('keyspace.gap').map((g) => g.attrs.reason),
      `fenced during the release: ${fenced}`,
    ).toContain('node_removed');
    expect(records('ownership.released').map((r) => r.attrs.reason)).toEqual(['removed']);
  }, 120_000);
});
