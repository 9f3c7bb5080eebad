import { describe, expect, it } from 'vitest';
import { checkCoverage } from '../../src/audit/coverage.js';
import { readOwnership } from '../../src/audit/ownership-records.js';
import { openLedgerStore } from '../../src/audit/store/ledger-store.js';
import { assignNodes } from '../../src/coordination/assignment.js';
import { waitFor, type Harness } from '../helpers/app-harness.js';
import { LEASE_MS, useHaFixture } from './ha-fixture.js';

/**
 * Attacks on the coordination keys by someone who can write the coordination Redis (here the
 * watched Redis itself, the default) but holds no HMAC key (docs/ha.md "Threat model"): two
 * in-process instances on one real Redis.
 */
const fx = useHaFixture('shared-fingerprint-key-for-the-ha-attacks');
const { start, records, node, ids, owner, writeTokens } = fx;
let n = 0;

/** Distinct tokens written, over the given ledgers (by fingerprint). */
function writtenTokens(...hs: Harness[]): Set<string> {
  const out = new Set<string>();
  for (const h of hs) for (const r of records(h, 'token.written')) out.add(r.fingerprint ?? '');
  return out;
}

describe('forged coordination keys', () => {
  // The counter bumped too: the forged previous epoch is then below the next one, but above
  // every marker epoch the standby's stream has seen.
  it.each([
    { forged: 999, bump: 0, epoch: 2, what: 'above the next epoch' },
    { forged: 6, bump: 5, epoch: 7, what: 'below the next epoch, above any seen' },
    // `last` left as it was (a's epoch 1), the epoch counter deleted: the next epoch is 1 again.
    { forged: 1, bump: -1, epoch: 1, what: 'genuine, the epoch counter deleted' },
  ])(
    'a forged `last` ($what) neither skips the takeover nor stops positions',
    async ({ forged, bump, epoch }) => {
      const prefix = `twa${++n}:`;
      const user = await fx.coordinationUser('coord-f');
      const [ida, idb] = ids();
      const a = start(ida, prefix, user.yaml);
      await owner(a);
      await a.app.whenReady();
      await fx.firstMarker(prefix);
      const b = start(idb, prefix);
      await b.app.whenReady();
      await writeTokens('early', 3);
      await waitFor(() => records(a, 'token.written').length === 3, 15_000, 'owner records');
      // a is cut off from the coordination Redis (it renews and publishes nothing more). The
      // attacker drops the committed position and names, in `last`, a previous epoch far above
      // any real one: a takeover that believed it would replay from "999.0" (nothing) and
      // record no gap; and its own tracker would ignore every marker below epoch 999.
      await user.cutOff();
      await fx.admin.del(`${prefix}committed:{${node()}}`);
      await fx.admin.set(`${prefix}last:{${node()}}`, `${ida}:${forged}`, 'PX', 60_000);
      if (bump > 0) await fx.admin.incrby(`${prefix}epoch:{${node()}}`, bump);
      if (bump < 0) await fx.admin.del(`${prefix}epoch:{${node()}}`);
      await waitFor(() => records(a, 'ownership.fenced').length === 1, 15_000, 'a fenced');
      // Between a's fence and b's acquisition nobody records: only b's buffer holds these.
      expect(b.app.coordinator?.role(node())).toBe('standby');
      await writeTokens('hole', 5);
      await owner(b);
      await waitFor(
        () => records(b, 'keyspace.gap').some((r) => r.attrs.reason === 'ownership_takeover'),
        15_000,
        'takeover gap',
      );
      expect(records(b, 'ownership.acquired').at(-1)?.attrs).toMatchObject({
        epoch,
        previous: { epoch: forged, instance: ida },
      });
      await b.app.settle();
      // Nothing the hole held is missing from the union of the two ledgers.
      expect(writtenTokens(a, b).size).toBe(8);
      // b's tracker takes its own epoch's markers: its live records carry its epoch's positions.
      await writeTokens('after', 3);
      await waitFor(() => writtenTokens(a, b).size === 11, 15_000, 'after recorded');
      const after = records(b, 'token.written').slice(-3);
      for (const r of after)
        expect(String(r.attrs.pos)).toMatch(new RegExp(`^${epoch}\\.\\d+\\.\\d+\\.\\d+$`));
    },
    60_000,
  );

  it('a deleted `last` (and committed position) does not make a takeover a silent first owner', async () => {
    const prefix = `twa${++n}:`;
    const user = await fx.coordinationUser('coord-g');
    const [ida, idb] = ids();
    const a = start(ida, prefix, user.yaml);
    await owner(a);
    await a.app.whenReady();
    await fx.firstMarker(prefix);
    const b = start(idb, prefix);
    await b.app.whenReady();
    await writeTokens('early', 3);
    await waitFor(() => records(a, 'token.written').length === 3, 15_000, 'owner records');
    // a is cut off from the coordination Redis (it renews and publishes nothing more). The
    // attacker drops the committed position and `last`: the takeover looks like a first owner's.
    await user.cutOff();
    await fx.admin.del(`${prefix}committed:{${node()}}`);
    await fx.admin.del(`${prefix}last:{${node()}}`);
    await waitFor(() => records(a, 'ownership.fenced').length === 1, 15_000, 'a fenced');
    // Between a's fence and b's acquisition nobody records: only b's buffer holds these.
    expect(b.app.coordinator?.role(node())).toBe('standby');
    await writeTokens('hole', 5);
    await owner(b);
    await waitFor(
      () => records(b, 'keyspace.gap').some((r) => r.attrs.reason === 'ownership_acquired'),
      15_000,
      'takeover gap',
    );
    expect(records(b, 'ownership.acquired').at(-1)?.attrs).toMatchObject({
      epoch: 2,
      previous: null,
    });
    await b.app.settle();
    // Nothing the hole held is missing from the union of the two ledgers.
    expect(writtenTokens(a, b).size).toBe(8);
    // b's tracker takes its own epoch's markers: its live records carry its epoch's positions.
    await writeTokens('after', 3);
    await waitFor(() => writtenTokens(a, b).size === 11, 15_000, 'after recorded');
    const after = records(b, 'token.written').slice(-3);
    for (const r of after)
      expect(String(r.attrs.pos)).toMatch(new RegExp(`^2\\.\\d+\\.\\d+\\.\\d+$`));
  }, 60_000);

  it('a registry member refreshed like a real one is believed (documented limit): the node goes unowned, coverage says so', async () => {
    const prefix = `twa${++n}:`;
    const [ida, idb] = ids();
    // An id rendezvous hashing prefers over both real instances for the node.
    let ghost = 'ghost-0';
    for (let i = 1; assignNodes([node()], [ida, idb, ghost]).get(node()) !== ghost; i++)
      ghost = `ghost-${i}`;
    const a = start(ida, prefix);
    await owner(a);
    await a.app.whenReady();
    const b = start(idb, prefix);
    await b.app.whenReady();
    await writeTokens('early', 3);
    await waitFor(() => records(a, 'token.written').length === 3, 15_000, 'owner records');
    // Whoever writes the coordination Redis keeps a ghost registered the way an instance does
    // (expiry = now + the registration ttl, refreshed): a far-future score is not believed
    // (lease.redis.test.ts), this one cannot be told from a real instance.
    let refreshing = true;
    const refresher = (async () => {
      while (refreshing) {
        const t = await fx.admin.time();
        await fx.admin.zadd(`${prefix}instances`, Number(t[0]) * 1000 + LEASE_MS - 500, ghost);
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    await waitFor(
      () => records(a, 'ownership.released').some((r) => r.attrs.reason === 'handover'),
      15_000,
      'handover to the ghost',
    );
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
    expect(a.app.coordinator?.role(node())).toBe('standby');
    expect(b.app.coordinator?.role(node())).toBe('standby');
    await writeTokens('unowned', 4);
    await new Promise((r) => setTimeout(r, 500));
    await a.app.settle();
    await b.app.settle();
    // Recorded by nobody, and no gap record: the loss of this limit.
    expect(writtenTokens(a, b).size).toBe(3);
    expect([...records(a, 'keyspace.gap'), ...records(b, 'keyspace.gap')]).toEqual([]);
    refreshing = false;
    await refresher;
    const to = Date.now();
    // ... which merged coverage reports: the node unowned after the handover.
    const owners = [a, b].map((h) => {
      const store = openLedgerStore(h.dbPath);
      try {
        return readOwnership(store, h.dbPath);
      } finally {
        store.close();
      }
    });
    const from = Math.min(...records(a, 'ownership.acquired').map((r) => r.time));
    const cov = checkCoverage({ ledgers: owners, from, to });
    expect(cov.ok).toBe(false);
    expect(cov.problems.map((p) => p.class)).toContain('unowned');
  }, 60_000);
});
