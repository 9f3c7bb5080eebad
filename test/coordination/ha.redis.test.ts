import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/app-harness.js';
import { LEASE_MS, useHaFixture } from './ha-fixture.js';

/**
 * Two in-process instances on one real Redis (issue #20, step 2): one owner records, the other
 * is a standby; a clean stop hands over; a lease that cannot be renewed fences its owner before
 * the standby takes over.
 */
const fx = useHaFixture('shared-fingerprint-key-for-the-ha-tests');
const { start, records, tokens, node, ids, owner, writeTokens } = fx;
let n = 0;

describe('two instances on one Redis', () => {
  it("records token events only in the owner's ledger, with the owner's epoch", async () => {
    const prefix = `tw${++n}:`;
    const [ida, idb] = ids();
    const a = start(ida, prefix);
    await owner(a);
    await a.app.whenReady();
    const b = start(idb, prefix);
    await b.app.whenReady();
    expect(b.app.coordinator?.role(node())).toBe('standby');
    await writeTokens('one', 20);
    await waitFor(() => records(a, 'token.written').length === 20, 15_000, 'owner records');
    await b.app.settle();
    expect(records(b, 'token.written')).toHaveLength(0);
    for (const r of records(a, 'token.written')) expect(r.attrs.epoch).toBe(1);
    expect(records(a, 'ownership.acquired').map((r) => r.attrs)).toEqual([
      {
        node: node(),
        epoch: 1,
        instance: ida,
        ledgerId: a.app.ledger.ledgerId,
        previous: null,
        from: null,
        replayed: 0,
      },
    ]);
    // The standby's readiness names it a standby; the owner's, an owner.
    await b.app.http.ready();
    const body = (await b.app.http.inject({ method: 'GET', url: '/readyz' })).json<{
      details: { coordination: { instance: string; nodes: Record<string, string> } };
    }>();
    expect(body.details.coordination).toMatchObject({
      instance: idb,
      nodes: { [node()]: 'standby' },
    });
    const metrics = await a.app.metrics.registry.metrics();
    expect(metrics).toContain('tokenwatch_coordination_owned_nodes 1');
    expect(metrics).toContain(`tokenwatch_lease_epoch{node="${node()}"} 1`);
  });

  it('hands over on a clean stop through a final marker: no gap, nothing missing, nothing twice', async () => {
    const prefix = `tw${++n}:`;
    const [ida, idb] = ids();
    const a = start(ida, prefix);
    await owner(a);
    await a.app.whenReady();
    const b = start(idb, prefix);
    await b.app.whenReady();
    const aTokens: { fingerprint: string; pos: unknown; epoch: unknown }[] = [];
    const released: Record<string, unknown>[] = [];
    a.app.onCommitted((batch) => {
      for (const c of batch) {
        if (c.input.type === 'token.written')
          aTokens.push({
            fingerprint: c.input.fingerprint ?? '',
            pos: c.input.attrs?.pos,
            epoch: c.input.attrs?.epoch,
          });
        if (c.input.type === 'ownership.released') released.push(c.input.attrs ?? {});
      }
    });
    // Positions exist from the owner's first marker on (written every markerEveryMs).
    await fx.firstMarker(prefix);
    // Writes go on while a stops: each one lands in exactly one of the two ledgers.
    let written = 0;
    let writing = true;
    const load = (async () => {
      while (writing) {
        await fx.admin.set(`oauth:access:load-${written}`, 'v', 'EX', 600);
        written++;
      }
    })();
    await waitFor(() => aTokens.length >= 50, 15_000, 'owner records under load');
    await a.app.stop('test');
    // a released its lease before stop() resolved: b takes the node on its next round.
    const releasedAt = Date.now();
    await owner(b);
    expect(Date.now() - releasedAt).toBeLessThan(LEASE_MS);
    await waitFor(() => records(b, 'token.written').length >= 50, 15_000, 'new owner records');
    writing = false;
    await load;
    const total = written;
    // Generous: under a full parallel test run the new owner may still be working through its
    // backlog. A timeout is not thrown here: the counts below then say what is missing.
    await waitFor(
      () => records(b, 'token.written').length + aTokens.length >= total,
      60_000,
      'every write recorded',
    ).catch(() => undefined);
    expect(released).toEqual([
      {
        node: node(),
        epoch: 1,
        instance: ida,
        through: expect.stringMatching(/^1\.\d+\.-1$/) as unknown,
        reason: 'shutdown',
      },
    ]);
    const acquired = records(b, 'ownership.acquired');
    expect(acquired.at(-1)?.attrs).toMatchObject({
      epoch: 2,
      instance: idb,
      previous: { epoch: 1, instance: ida },
      from: released[0]?.through,
    });
    expect(records(b, 'keyspace.gap')).toEqual([]);
    const bTokens = records(b, 'token.written');
    const all = [...aTokens.map((t) => t.fingerprint), ...bTokens.map((r) => r.fingerprint)];
    expect(all).toHaveLength(total);
    expect(new Set(all).size).toBe(total);
    // Positions are known from the first marker the owner saw on: a's last records and all of
    // b's (b counted from a's markers) name theirs.
    // Every record names its stream position: a's (the load began after a's first marker)
    // and b's (b counted from a's markers).
    for (const t of aTokens) expect(t.pos).toMatch(/^1\.\d+\.\d+\.0$/);
    for (const r of bTokens) expect(r.attrs.pos).toMatch(/^\d+\.\d+\.\d+\.0$/);
    for (const r of bTokens) expect(r.attrs.epoch).toBe(2);
  }, 120_000);

  it('hands the node over to a joining instance that rendezvous hashing desires for it', async () => {
    const prefix = `tw${++n}:`;
    const [desired, other] = ids();
    const a = start(other, prefix);
    await owner(a);
    await a.app.whenReady();
    const b = start(desired, prefix);
    await owner(b);
    await waitFor(() => records(a, 'ownership.released').length === 1, 15_000, 'released');
    expect(records(a, 'ownership.released')[0]?.attrs).toMatchObject({
      epoch: 1,
      instance: other,
      reason: 'handover',
    });
    expect(a.app.coordinator?.role(node())).toBe('standby');
    await waitFor(() => records(b, 'ownership.acquired').length === 1, 15_000, 'acquired');
    expect(records(b, 'ownership.acquired')[0]?.attrs).toMatchObject({
      epoch: 2,
      previous: { epoch: 1, instance: other },
    });
    await b.app.whenReady();
    await writeTokens('x', 5);
    await waitFor(() => records(b, 'token.written').length === 5, 15_000, 'new owner records');
    await a.app.settle();
    expect(records(a, 'token.written')).toHaveLength(0);
  });

  it('fences an owner whose lease was lost; the desired owner acquires the next epoch', async () => {
    const prefix = `tw${++n}:`;
    const [ida, idb] = ids();
    const a = start(ida, prefix);
    await owner(a);
    await a.app.whenReady();
    const b = start(idb, prefix);
    await b.app.whenReady();
    // The coordination Redis loses the lease (e.g. a failover to a replica that had not got it).
    await fx.admin.del(`${prefix}lease:{${node()}}`);
    await waitFor(() => records(a, 'ownership.fenced').length === 1, 15_000, 'fence record');
    expect(records(a, 'ownership.fenced')[0]?.attrs).toMatchObject({
      node: node(),
      epoch: 1,
      instance: ida,
      reason: 'lost',
    });
    // a is still the instance rendezvous hashing desires: it takes the node again, epoch 2,
    // and reconciles the moment it was not recording.
    await waitFor(() => records(a, 'ownership.acquired').length === 2, 15_000, 'acquired again');
    expect(records(a, 'ownership.acquired')[1]?.attrs).toMatchObject({
      epoch: 2,
      previous: { epoch: 1, instance: ida },
    });
    await waitFor(
      () => records(a, 'keyspace.gap').some((r) => r.attrs.reason === 'ownership_takeover'),
      15_000,
      'takeover gap',
    );
    await writeTokens('after', 10);
    await waitFor(() => records(a, 'token.written').length === 10, 15_000, 'owner records');
    await b.app.settle();
    expect(records(b, 'token.written')).toHaveLength(0);
    expect(records(a, 'token.written').every((r) => r.attrs.epoch === 2)).toBe(true);
  });

  it('fences an owner that cannot renew before its lease can expire, then the standby takes over', async () => {
    const prefix = `tw${++n}:`;
    // inst-a reaches the coordination Redis as its own ACL user: revoking EVAL cuts it off
    // from the leases (a partition) while its watcher keeps receiving notifications.
    const user = await fx.coordinationUser('coord-a');
    const [ida, idb] = ids();
    const a = start(ida, prefix, user.yaml);
    await owner(a);
    await a.app.whenReady();
    await fx.firstMarker(prefix);
    const b = start(idb, prefix);
    await b.app.whenReady();
    await writeTokens('before', 5);
    await waitFor(() => records(a, 'token.written').length === 5, 15_000, 'owner records');
    // Cut off once a published how far its records go: b then replays nothing of a's.
    await fx.committedThrough(a, prefix);
    await user.cutOff();
    await owner(b);
    // Tokens written once b owns the node are b's to record, never a's.
    await writeTokens('after', 10);
    await waitFor(() => records(b, 'token.written').length === 10, 15_000, 'new owner records');
    await a.app.settle();
    const fenced = records(a, 'ownership.fenced');
    expect(fenced.map((r) => r.attrs.reason)).toEqual(['expired']);
    expect(records(b, 'ownership.acquired').at(-1)?.attrs).toMatchObject({
      epoch: 2,
      previous: { epoch: 1, instance: ida },
      replayed: 0,
    });
    await b.app.settle();
    expect(records(b, 'token.written')).toHaveLength(10);
    // a stopped recording at its own monotonic deadline (checked on every event), whatever
    // its timers did: nothing after its fence record.
    const afterFence = tokens(a).filter((r) => r.seq > (fenced[0]?.seq ?? 0));
    expect(afterFence).toHaveLength(0);
    expect(records(a, 'token.written')).toHaveLength(5);
  });
  it('does not believe a committed position no owner tagged, even a plausible one: records a gap', async () => {
    const prefix = `tw${++n}:`;
    const user = await fx.coordinationUser('coord-c');
    const [ida, idb] = ids();
    const a = start(ida, prefix, user.yaml);
    await owner(a);
    await a.app.whenReady();
    const b = start(idb, prefix);
    await b.app.whenReady();
    await writeTokens('before', 5);
    await waitFor(() => records(a, 'token.written').length === 5, 15_000, 'owner records');
    // a is cut off from the leases (it publishes nothing more); someone with write access to
    // the coordination Redis names a committed position just past the markers a wrote so far
    // (within what a could have committed): a takeover that believed it would replay nothing
    // of what came after a's real commits, and record no gap.
    await user.cutOff();
    const ns = (await fx.admin.keys(`${prefix}marker:1:*`)).map((k) => Number(k.split(':')[3]));
    const forged = `1.${Math.max(...ns) + 1}.0`;
    await fx.admin.set(`${prefix}committed:{${node()}}`, forged);
    await owner(b);
    await waitFor(
      () => records(b, 'keyspace.gap').some((r) => r.attrs.reason === 'ownership_takeover'),
      15_000,
      'takeover gap',
    );
    expect(records(b, 'ownership.acquired').at(-1)?.attrs).toMatchObject({
      epoch: 2,
      previous: { epoch: 1, instance: ida },
      from: '1.0.-1',
    });
    const rejected = records(b, 'ownership.marker_rejected');
    expect(rejected.map((r) => r.attrs)).toEqual([
      { node: node(), reason: 'committed_bad_mac', length: forged.length },
    ]);
    // The forged value itself is not in the ledger, only its fingerprint.
    expect(rejected[0]?.fingerprint).toBe(b.app.fingerprinter.of(Buffer.from(forged, 'latin1')));
  });

  it('refuses forged markers: positions stay in line across instances, the takeover replays exactly', async () => {
    const prefix = `tw${++n}:`;
    const [ida, idb] = ids();
    const a = start(ida, prefix);
    await owner(a);
    await a.app.whenReady();
    const b = start(idb, prefix);
    await b.app.whenReady();
    await fx.firstMarker(prefix);
    await writeTokens('before', 5);
    await waitFor(() => records(a, 'token.written').length === 5, 15_000, 'owner records');
    // Someone who can write the watched Redis, without the HMAC key: markers of epochs far
    // above the owner's (unauthenticated, each would have become every instance's base and
    // hidden the owner's real markers from then on).
    const forged = Array.from(
      { length: 15 },
      (_, i) => `${prefix}marker:${999_990 + i}:1:${'0123456789abcdef0123'}`,
    );
    for (const k of forged) await fx.admin.set(k, '1', 'PX', 10_000);
    await writeTokens('after', 20);
    await waitFor(() => records(a, 'token.written').length === 25, 15_000, 'owner records more');
    for (const r of records(a, 'token.written')) expect(r.attrs.pos).toMatch(/^1\.\d+\.\d+\.0$/);
    for (const h of [a, b]) {
      await waitFor(
        () => records(h, 'ownership.marker_rejected').length === 10,
        15_000,
        'rejections recorded (10 per node and minute, the rest counted)',
      );
      const first = records(h, 'ownership.marker_rejected')[0];
      expect(first?.attrs).toEqual({
        node: node(),
        reason: 'bad_mac',
        length: String(forged[0]).length,
      });
      expect(first?.fingerprint).toBe(h.app.fingerprinter.of(Buffer.from(String(forged[0]))));
      const metrics = await h.app.metrics.registry.metrics();
      expect(metrics).toContain(
        `tokenwatch_marker_rejected_total{node="${node()}",reason="bad_mac"} 15`,
      );
    }
    // The standby counted from the owner's markers all along: a graceful handover from a
    // joins up with b's buffer exactly (no gap, every write once).
    await a.app.stop('test');
    await owner(b);
    await writeTokens('later', 5);
    await waitFor(() => records(b, 'token.written').length >= 5, 15_000, 'new owner records');
    expect(records(b, 'keyspace.gap')).toEqual([]);
    expect(records(b, 'ownership.acquired').at(-1)?.attrs.from).toMatch(/^1\.\d+\.-1$/);
    for (const r of records(b, 'token.written')) expect(r.attrs.pos).toMatch(/^[12]\.\d+\.\d+\.0$/);
  }, 60_000);

  it('the first owner of a node nobody owned records what every instance received meanwhile', async () => {
    const prefix = `tw${++n}:`;
    // A holder that never writes a marker and has no `last` record: while it holds the lease
    // nobody records the node, as for a just promoted Cluster master before its first owner.
    await fx.admin.set(`${prefix}lease:{${node()}}`, 'ghost:0', 'PX', 4000);
    const a = start('inst-a', prefix);
    await a.app.whenReady();
    expect(a.app.coordinator?.role(node())).toBe('standby');
    await writeTokens('unowned', 10);
    const p = fx.admin.pipeline();
    for (let i = 0; i < 4; i++) p.del(`oauth:access:unowned-${i}`);
    await p.exec();
    await a.app.settle();
    expect(records(a, 'token.written')).toHaveLength(0);
    await owner(a);
    await waitFor(() => records(a, 'token.deleted').length === 4, 15_000, 'deletions recorded');
    expect(records(a, 'token.written')).toHaveLength(10);
    for (const r of [...records(a, 'token.written'), ...records(a, 'token.deleted')]) {
      expect(r.attrs.epoch).toBe(1);
      expect(r.attrs.pos).toBeUndefined();
    }
    expect(records(a, 'ownership.acquired').at(-1)?.attrs).toMatchObject({
      epoch: 1,
      previous: null,
      from: null,
      replayed: 14,
    });
    // Its baseline ran while it was a standby (withheld from its ledger): it runs again once
    // owned, and nothing is a blind spot (the prelude holds every event since subscribing).
    const acquiredAt = records(a, 'ownership.acquired').at(-1)?.seq ?? Infinity;
    await waitFor(
      () => records(a, 'keyspace.baseline').some((r) => r.seq > acquiredAt),
      15_000,
      'baseline recorded as owner',
    );
    expect(records(a, 'keyspace.gap')).toEqual([]);
  }, 60_000);

  it('a takeover that cannot replay exactly still records what its buffer holds, besides the gap', async () => {
    const prefix = `tw${++n}:`;
    const user = await fx.coordinationUser('coord-d');
    const [ida, idb] = ids();
    const a = start(ida, prefix, user.yaml);
    await owner(a);
    await a.app.whenReady();
    await fx.firstMarker(prefix);
    await writeTokens('early', 5);
    await waitFor(() => records(a, 'token.written').length === 5, 15_000, 'owner records');
    await fx.committedThrough(a, prefix);
    // a is cut off from the coordination Redis (it publishes nothing more), then b starts: b's
    // buffer begins after the last committed position a published, so b cannot replay exactly.
    await user.cutOff();
    const b = start(idb, prefix);
    await b.app.whenReady();
    // Writes and deletions go on through a's fence and b's takeover: between them nobody
    // records; only b's buffer holds those events.
    const deleted: string[] = [];
    let writing = true;
    const load = (async () => {
      for (let i = 0; writing; i++) {
        await fx.admin.set(`oauth:access:load-${i}`, 'v', 'EX', 600);
        await fx.admin.del(`oauth:access:load-${i}`);
        deleted.push(`oauth:access:load-${i}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await owner(b);
    await waitFor(
      () => records(b, 'keyspace.gap').some((r) => r.attrs.reason === 'ownership_takeover'),
      15_000,
      'takeover gap',
    );
    await new Promise((r) => setTimeout(r, 300));
    writing = false;
    await load;
    await waitFor(
      () =>
        records(a, 'token.deleted').length + records(b, 'token.deleted').length >= deleted.length,
      15_000,
      'every deletion recorded',
    ).catch(() => undefined);
    const acquired = records(b, 'ownership.acquired').at(-1)?.attrs;
    expect(acquired).toMatchObject({ epoch: 2, previous: { epoch: 1, instance: ida } });
    expect(acquired?.replayed).toBeGreaterThan(0);
    // By node/pos, the two ledgers hold each deletion the load made (a's and b's overlap
    // carry the same positions).
    const byPos = new Map<string, string>();
    for (const r of [...records(a, 'token.deleted'), ...records(b, 'token.deleted')])
      byPos.set(typeof r.attrs.pos === 'string' ? r.attrs.pos : `#${r.seq}`, r.fingerprint ?? '');
    expect(new Set(byPos.values()).size).toBe(deleted.length);
    expect(byPos.size).toBe(deleted.length);
  }, 60_000);

  it('publishes a committed position at quiet markers: a takeover after a quiet period records no gap', async () => {
    const prefix = `tw${++n}:`;
    const user = await fx.coordinationUser('coord-e');
    const [ida, idb] = ids();
    const a = start(ida, prefix, user.yaml);
    await owner(a);
    await a.app.whenReady();
    await fx.firstMarker(prefix);
    await writeTokens('early', 3);
    await waitFor(() => records(a, 'token.written').length === 3, 15_000, 'owner records');
    // b starts after the last token event: its buffer begins at a later marker.
    const b = start(idb, prefix);
    await b.app.whenReady();
    const committedKey = `${prefix}committed:{${node()}}`;
    const first = await fx.admin.get(committedKey);
    // The owner passes markers with nothing pending: it publishes "committed through just
    // before marker n", and n keeps rising while the node is quiet.
    await waitFor(
      async () => {
        const c = await fx.admin.get(committedKey);
        return c !== null && c !== first && /^1\.\d+\.-1:[0-9a-f]{20}$/.test(c);
      },
      15_000,
      'quiet committed position',
    );
    await new Promise((r) => setTimeout(r, 800));
    await user.cutOff();
    await owner(b);
    await waitFor(() => records(b, 'ownership.acquired').length > 0, 15_000, 'acquired record');
    await b.app.settle();
    const acquired = records(b, 'ownership.acquired').at(-1)?.attrs;
    expect(acquired).toMatchObject({
      epoch: 2,
      previous: { epoch: 1, instance: ida },
      replayed: 0,
    });
    expect(String(acquired?.from)).toMatch(/^1\.\d+\.-1$/);
    expect(records(b, 'ownership.marker_rejected')).toEqual([]);
    expect(records(b, 'keyspace.gap')).toEqual([]);
  }, 60_000);
});
