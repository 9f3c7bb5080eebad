import { describe, expect, it } from 'vitest';
import { assignNodes } from '../../src/coordination/assignment.js';
import { keySlot } from '../../src/keyspace/cluster-slot.js';
import { waitFor, type Harness } from '../helpers/app-harness.js';
import { slotRanges } from '../helpers/redis-cluster.js';
import {
  clusterWithCoordination,
  desiredOwnersSettled,
  label,
  masterKey,
  ownedBy,
} from './cluster-instance.js';

/**
 * A Cluster master fails over (3 masters + 3 replicas, three instances, a separate coordination
 * Redis as docs/ha.md advises). The replica promoted in its place serves the same slots, so the
 * assignment (which weighs a master by its slots) desires it for the instance that owned the
 * dead master: that instance is its first owner, and its one inventory accounts for the dead
 * master's tokens across the failover. Deletions made on the promoted replica right after the
 * promotion, before or after the instances subscribe to it, are all in that instance's ledger
 * (`token.deleted` as the first owner, or `token.vanished` of the dead master's `node_removed`
 * gap, which it records as the master's last owner). Before, the promoted master went to
 * whichever instance its address hashed to: a deletion could fall between the last owner's
 * inventory (which had applied it as a standby of the new master) and the first owner's (which
 * subscribed after it), and no ledger held it (the HA Cluster drill's intermittent step 4).
 * While the dead master's slots are served by nobody, its key stays in the assignment (vacant):
 * the other masters keep their owners (no handover and back, no takeover gap).
 */
const fixture = clusterWithCoordination('shared-fingerprint-key-for-the-failover-test');
const owned = ownedBy;

describe('a Cluster master failover with three instances', () => {
  it("gives the promoted replica to the dead master's owner, whose ledger holds every deletion made across it", async () => {
    const ids = ['c-1', 'c-2', 'c-3'];
    const cluster = fixture.cluster();
    const hs = ids.map((id) => fixture.start(id));
    for (const h of hs) await h.app.whenReady(30_000);
    const masters = await cluster.masters();
    const keyOf = masterKey;
    // Each instance owns the master it is desired for (handovers done).
    const full = await desiredOwnersSettled(hs, ids, masters);
    // The victim: a master without whose key the assignment of the two left would differ, so
    // that a failover without its vacant key would hand a healthy master over and back.
    const victim = masters.find((v) => {
      const others = masters.filter((m) => m !== v).map(keyOf);
      const without = assignNodes(others, ids);
      return others.some((k) => without.get(k) !== full.get(k));
    }) as (typeof masters)[0];
    expect(victim, 'these ids move a master when one is missing').toBeDefined();
    const ranges = slotRanges(victim.slots);
    const last = hs.find((h) => owned(h).includes(label(victim.port))) as Harness;
    expect(last).toBeDefined();
    const keys: string[] = [];
    for (let i = 0; keys.length < 40; i++) {
      const key = `oauth:access:fo-${i}`;
      const slot = keySlot(key);
      if (ranges.some(([a, b]) => slot >= a && slot <= b)) keys.push(key);
    }
    const client = cluster.client();
    for (const k of keys) await client.set(k, 'v', 'EX', 600);
    const fp = (k: string) => last.app.rules.classify(k)?.fingerprint as string;
    const written = () =>
      new Set(last.app.ledger.list({ type: 'token.written' }).map((r) => r.fingerprint));
    await waitFor(() => keys.every((k) => written().has(fp(k))), 30_000, 'writes recorded');

    const killedAt = Date.now();
    await cluster.nodes.find((n) => n.port === victim.port)?.halt(true);
    await waitFor(() => cluster.failedOver(victim.port), 30_000, 'replica promoted');
    // Deleted at once on the promoted replica, as soon as it answers (whether the instances
    // watch it by then is not controlled: each deletion is in the ledger either way). A write
    // the dead master acknowledged and did not replicate is gone (DEL answers 0): not counted.
    const deleted: string[] = [];
    for (const k of keys.slice(0, 20)) {
      let n = -1;
      await waitFor(
        async () => (n = await client.del(k).catch(() => -1)) >= 0,
        30_000,
        `DEL ${k} on the promoted replica`,
      );
      if (n === 1) deleted.push(k);
    }
    expect(deleted.length).toBeGreaterThan(0);
    const promoted = (await cluster.masters()).find(
      (m) => m.port !== victim.port && keyOf(m) === keyOf(victim),
    ) as { port: number };
    expect(promoted).toBeDefined();
    await waitFor(
      () => owned(last).includes(label(promoted.port)),
      30_000,
      "the promoted replica owned by the dead master's owner",
    );

    // Its first acquisition (epoch 1) is the dead master's last owner's, and nobody else's.
    await waitFor(
      () =>
        last.app.ledger
          .list({ type: 'ownership.acquired' })
          .some((r) => r.attrs.node === label(promoted.port)),
      30_000,
      'the acquisition committed',
    );
    for (const h of hs) {
      const acquired = h.app.ledger
        .list({ type: 'ownership.acquired' })
        .filter((r) => r.attrs.node === label(promoted.port));
      if (h === last) expect(acquired.map((r) => r.attrs.epoch)).toEqual([1]);
      else expect(acquired).toEqual([]);
    }
    // Nobody else handed over or acquired anything across the failover, and no takeover gap.
    for (const h of hs) {
      const moves = ['ownership.released', 'ownership.acquired'].flatMap((type) =>
        h.app.ledger
          .list({ type })
          .filter((r) => r.time >= killedAt)
          .map(
            (r) =>
              `${r.type} ${String(r.attrs.node)} ${typeof r.attrs.reason === 'string' ? r.attrs.reason : ''}`,
          ),
      );
      expect(moves.sort()).toEqual(
        h === last
          ? [
              `ownership.acquired ${label(promoted.port)} `,
              `ownership.released ${label(victim.port)} removed`,
            ]
          : [],
      );
      const gaps = h.app.ledger
        .list({ type: 'keyspace.gap' })
        .filter((g) => String(g.attrs.reason).startsWith('ownership_'));
      expect(gaps).toEqual([]);
    }
    // Every deletion is in that one ledger, observed or retired with the dead master.
    const ended = () =>
      new Set(
        ['token.deleted', 'token.vanished'].flatMap((type) =>
          last.app.ledger.list({ type }).map((r) => r.fingerprint),
        ),
      );
    await waitFor(
      () => deleted.every((k) => ended().has(fp(k))),
      30_000,
      "every deletion in the owner's ledger",
    ).catch(() => undefined);
    expect(deleted.filter((k) => !ended().has(fp(k)))).toEqual([]);
    // And its inventory equals the cluster.
    const inCluster = await cluster.countKeys('oauth:access:fo-*');
    await waitFor(
      () => last.app.keyspace.dueCounts().access_token?.live === inCluster,
      30_000,
      'inventory equals the cluster',
    );
  }, 120_000);
});
