import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveHmacKeys } from '../../src/audit/hmac-keys.js';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import type { AuditRecord } from '../../src/audit/record.js';
import { listRecords, openReadOnly } from '../../src/audit/query.js';
import { parseConfig } from '../../src/config/load.js';
import { TokenRules } from '../../src/keyspace/token-rules.js';
import { slotIdentity } from '../../src/keyspace/slot-identity.js';
import { assignNodes } from '../../src/coordination/assignment.js';
import { DEFAULT_TOKEN_RULES, waitFor } from '../helpers/app-harness.js';
import { slotRanges, startCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { startRedis } from '../helpers/redis-server.js';
import {
  countClusterKinds,
  diff,
  report,
  serveInstance,
  startLoad,
  verifyBeside,
  type Offered,
  type ServeInstance,
} from './fault-harness.js';

/**
 * Issue #20 acceptance drill on a real Redis Cluster (3 masters + 3 replicas): three `tokenwatch
 * serve` processes with a shared config and a separate standalone coordination Redis (docs/ha.md:
 * a killed Cluster master may hold lease keys), load from a separate process over all slots.
 * Steps: the masters spread 1/1/1; one instance is SIGKILLed (the others take its master within
 * the lease); a new instance joins (1/1/1 again, by graceful handover); a Redis master is
 * SIGKILLed (its replica is promoted and owned). After each step every instance's inventory
 * equals the cluster's keys (SCAN of every master), and the union of the ledgers' token records
 * (deduplicated by node/pos) holds every write and deletion the load generator acknowledged.
 * Across the master kill, a key missing from that union must be on the dead master's slots and
 * be one of: reconciled (token.appeared / token.vanished via reconcile), a write unseen whose
 * end was recorded, or a write or deletion Redis lost with the master. A deletion the promoted
 * replica acknowledged must be in the union: before the instances subscribed to it, as
 * `token.vanished` in the dead master's `node_removed` gap (recorded by its last owner); after,
 * as `token.deleted` (the first owner records what every instance received before it owned the
 * node).
 * Merged verify: every ledger intact and coverage complete (the dead master's last owner
 * releases it as `removed`, which ends its window).
 */
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli.js');
const HMAC = 'shared-fingerprint-key-for-the-cluster-drill';
const KINDS = ['access_token', 'refresh_token', 'session'];
/** The default lease (docs/ha.md): a dead owner's master is taken over within it. */
const LEASE_MS = 5000;

type Instance = ServeInstance;

/** Polls `check` every 100 ms (SCANs and HTTP calls are not free on a loaded machine). */
async function until(check: () => boolean | Promise<boolean>, ms: number, what: string) {
  await waitFor(
    async () => {
      if (await check()) return true;
      await new Promise((r) => setTimeout(r, 90));
      return false;
    },
    ms,
    what,
  );
}

const serve = (
  dir: string,
  id: string,
  cluster: RedisCluster,
  coordination: string,
): Promise<Instance> =>
  serveInstance({
    dir,
    id,
    redis: `  url: redis://127.0.0.1:1\n  ${cluster.watchConfig()}`,
    coordination: `  redis: ${coordination}`,
    hmacKey: HMAC,
    cleanups,
  });

async function get(i: Instance, path: string): Promise<string | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${i.port}${path}`, {
      signal: AbortSignal.timeout(5000),
    });
    return await r.text();
  } catch {
    return undefined;
  }
}

/** The nodes this instance owns per its /readyz details; undefined while not ready. */
async function owned(i: Instance): Promise<string[] | undefined> {
  const text = await get(i, '/readyz');
  if (!text) return undefined;
  const body = JSON.parse(text) as {
    status: string;
    details?: { coordination?: { nodes?: Record<string, string> } };
  };
  if (body.status !== 'ready') return undefined;
  const nodes = body.details?.coordination?.nodes ?? {};
  return Object.entries(nodes)
    .filter(([, r]) => r === 'owner')
    .map(([n]) => n);
}

const label = (port: number) => `127.0.0.1:${port}`;

/** Each current master owned by exactly one of `is`, each of them owning one. */
async function spreadOneEach(cluster: RedisCluster, is: Instance[]): Promise<boolean> {
  const masters = (await cluster.masters().catch(() => [])).map((m) => label(m.port)).sort();
  if (masters.length !== 3) return false;
  const all: string[] = [];
  for (const i of is) {
    const o = await owned(i);
    if (o?.length !== 1) return false;
    all.push(...o);
  }
  return JSON.stringify(all.sort()) === JSON.stringify(masters);
}

/** This instance's inventory by kind (live + past due), from /metrics. */
async function inventory(i: Instance): Promise<Record<string, number> | undefined> {
  const text = await get(i, '/metrics');
  if (!text) return undefined;
  const out: Record<string, number> = Object.fromEntries(KINDS.map((k) => [k, 0]));
  for (const m of text.matchAll(
    /^tokenwatch_tokens_(?:live|past_due)\{kind="([a-z_]+)"\} (\d+)$/gm,
  )) {
    const kind = m[1] as string;
    if (KINDS.includes(kind)) out[kind] = (out[kind] ?? 0) + Number(m[2]);
  }
  return out;
}

/** The last `lines` lines of an instance's log (level warn and above), for a failed step. */
function logTail(i: Instance, lines: number): string {
  let text = '';
  try {
    text = readFileSync(i.log, 'utf8');
  } catch {
    return `${i.id}: no log\n`;
  }
  return `--- ${i.id} (last ${lines} lines of serve.log)\n${text.trimEnd().split('\n').slice(-lines).join('\n')}\n`;
}

function read(db: string, type: string): AuditRecord[] {
  const h = openReadOnly(db);
  try {
    return listRecords(h, { type });
  } finally {
    h.close();
  }
}

/** Distinct token records across ledgers (by node/pos; without pos: per ledger and seq). */
function union(dbs: string[], type: string): Map<string, AuditRecord> {
  const out = new Map<string, AuditRecord>();
  for (const db of dbs)
    for (const r of read(db, type)) {
      const pos = r.attrs.pos;
      out.set(typeof pos === 'string' ? `${String(r.attrs.node)}/${pos}` : `${db}#${r.seq}`, r);
    }
  return out;
}

interface Logged {
  written: string[];
  writtenAt: number[];
  deleted: string[];
  deletedAt: number[];
}

interface StepResult {
  fault: string;
  offered: Offered;
  live: number;
  recovered: number;
  gaps: number;
  finalDiff: number;
}

describe('several instances on a Redis Cluster (issue #20)', () => {
  it('3 masters + 3 replicas, 3 serve processes: spread 1/1/1, kill -9 an instance, add one, kill -9 a master: inventory equals the cluster and the merged ledgers miss nothing after each step', async () => {
    const startedAt = Date.now();
    const cluster = await startCluster(3, 1);
    cleanups.push(() => cluster.stop());
    const coordination = await startRedis();
    cleanups.push(() => coordination.stop());
    const dir = mkdtempSync(join(tmpdir(), 'tw-ha-cluster-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const logs = mkdtempSync(join(tmpdir(), 'tw-ha-cluster-load-'));
    cleanups.push(() => rmSync(logs, { recursive: true, force: true }));

    // The same fingerprints as the instances (same HMAC key, same token rules).
    const config = parseConfig(`audit:\n  path: ${join(logs, 'x.db')}\n${DEFAULT_TOKEN_RULES}`, {
      TOKENWATCH_HMAC_KEY: HMAC,
    });
    const rules = new TokenRules(
      config.tokens,
      new Fingerprinter(resolveHmacKeys(config.audit.hmacKeys, config.audit.path).keys),
    );
    const fp = (key: string) => rules.classify(key)?.fingerprint as string;

    const all: Instance[] = [];
    let running: Instance[] = [];
    for (const id of ['c-1', 'c-2', 'c-3'])
      all.push(await serve(dir, id, cluster, coordination.url));
    running = [...all];
    const dbs = () => all.map((i) => i.db);
    const results: StepResult[] = [];
    const steps: string[] = [];
    let verdict = 'not reached';
    const seenGaps = new Set<string>();

    const clusterKinds = async () =>
      countClusterKinds((await cluster.masters()).map((m) => m.port));

    /** Keys across the masters whose name contains `part` (progress of the load). */
    const progressed = async (part: string, n: number) =>
      (await cluster.countKeys(`*${part}*`).catch(() => 0)) >= n;

    /** The takeovers that could not replay, as the instances logged them (cumulative). */
    const takeoverWhy = (): string[] =>
      all.flatMap((i) => {
        let text = '';
        try {
          text = readFileSync(i.log, 'utf8');
        } catch {
          return [];
        }
        return text
          .split('\n')
          .filter((l) => l.includes('takeover cannot replay'))
          .map((l) => {
            try {
              const j = JSON.parse(l) as Record<string, unknown>;
              return `${i.id} ${String(j.node)} e${String(j.epoch)} ${String(j.why)} from ${String(j.from)}`;
            } catch {
              return `${i.id} ${l.slice(0, 200)}`;
            }
          });
      });

    /**
     * Runs one step under a fresh load (its own key prefix and log), then stops the load and
     * checks inventory and ledgers. `account` says why a key missing from the merged ledgers
     * is not a loss of tokenwatch's (only across the master kill); undefined: it is one.
     */
    async function step(
      n: number,
      fault: string,
      during: () => Promise<string>,
      account?: (
        key: string,
        op: 'written' | 'deleted',
        recorded: Set<string>,
        at: number,
      ) => Promise<string | undefined>,
    ): Promise<void> {
      const stepStart = Date.now();
      const prefix = `s${n}-`;
      const log = join(logs, `step-${n}.json`);
      const load = await startLoad({ cluster: cluster.seeds }, 400, prefix, log);
      let stopped = false;
      cleanups.push(async () => {
        if (!stopped) await load.stop().catch(() => undefined);
      });
      await until(() => progressed(prefix, 200), 60_000, `step ${n}: load under way`);
      const detail = await during();
      // The load goes on under the new arrangement before it stops.
      const before = await cluster.countKeys(`*${prefix}*`).catch(() => 0);
      await until(() => progressed(prefix, before + 200), 60_000, `step ${n}: load continues`);
      stopped = true;
      const offered = await load.stop();
      const logged = JSON.parse(readFileSync(log, 'utf8')) as Logged;
      expect(logged.written.length).toBe(offered.written);
      expect(logged.deleted.length).toBe(offered.deleted);

      // Every running instance's inventory equals the cluster's keys, per kind.
      let finalDiff = -1;
      // Which instance is off, per kind and signed (inventory - cluster), for the report.
      let offBy = '';
      await until(
        async () => {
          const redis = await clusterKinds().catch(() => undefined);
          if (!redis) return false;
          let d = 0;
          const off: string[] = [];
          for (const i of running) {
            const inv = await inventory(i);
            if (!inv) return false;
            d += diff(redis, inv);
            for (const k of KINDS)
              if ((inv[k] ?? 0) !== (redis[k] ?? 0))
                off.push(`${i.id} ${k} ${(inv[k] ?? 0) - (redis[k] ?? 0)}`);
          }
          finalDiff = d;
          offBy = off.join(', ');
          return d === 0;
        },
        60_000,
        `step ${n}: every inventory equals the cluster`,
      ).catch(() => undefined);

      // The merged ledgers hold every acknowledged write and deletion.
      let missing: { written: string[]; deleted: string[] } = { written: [], deleted: [] };
      const collect = () => {
        const w = new Set([...union(dbs(), 'token.written').values()].map((r) => r.fingerprint));
        const d = new Set([...union(dbs(), 'token.deleted').values()].map((r) => r.fingerprint));
        missing = {
          written: logged.written.filter((k) => !w.has(fp(k))),
          deleted: logged.deleted.filter((k) => !d.has(fp(k))),
        };
        return missing.written.length + missing.deleted.length === 0;
      };
      await until(collect, account ? 15_000 : 30_000, `step ${n}: the ledgers hold the load`).catch(
        () => undefined,
      );
      // What the ledgers recorded per fingerprint (any token record type).
      const recordedTypes = new Map<string, Set<string>>();
      for (const db of dbs())
        for (const r of read(db, 'token.*')) {
          const set = recordedTypes.get(r.fingerprint ?? '') ?? new Set<string>();
          set.add(r.attrs.via === 'reconcile' ? `${r.type} (reconcile)` : r.type);
          recordedTypes.set(r.fingerprint ?? '', set);
        }
      const unaccounted: string[] = [];
      const accounted: Record<string, number> = {};
      const ackedAt = new Map<string, number>();
      logged.written.forEach((k, x) => ackedAt.set(`written ${k}`, logged.writtenAt[x] ?? 0));
      logged.deleted.forEach((k, x) => ackedAt.set(`deleted ${k}`, logged.deletedAt[x] ?? 0));
      for (const [op, keys] of [
        ['written', missing.written],
        ['deleted', missing.deleted],
      ] as const)
        for (const k of keys) {
          const why = account
            ? await account(
                k,
                op,
                recordedTypes.get(fp(k)) ?? new Set(),
                ackedAt.get(`${op} ${k}`) ?? 0,
              )
            : undefined;
          if (why && !why.startsWith('!')) accounted[why] = (accounted[why] ?? 0) + 1;
          else
            unaccounted.push(
              `${op} ${k}: ${[...(recordedTypes.get(fp(k)) ?? [])].join(',')} ${why ?? ''}`,
            );
        }
      const accountedText = Object.entries(accounted)
        .map(([why, c]) => `${c} ${why}`)
        .join(', ');

      const stepFps = new Set([...logged.written, ...logged.deleted].map(fp));
      // The row's live / recovered columns: this step's keys, reconciliation included.
      const tokens = ['token.written', 'token.deleted', 'token.appeared', 'token.vanished']
        .flatMap((t) => [...union(dbs(), t).values()])
        .filter((r) => stepFps.has(r.fingerprint ?? ''));
      const gaps: AuditRecord[] = [];
      for (const db of dbs())
        for (const g of read(db, 'keyspace.gap')) {
          const id = `${db}#${g.seq}`;
          if (seenGaps.has(id)) continue;
          seenGaps.add(id);
          gaps.push(g);
        }
      const gapText = gaps.map(
        (g) =>
          `${String(g.attrs.reason)}@${String(g.attrs.node)} ${Number(g.attrs.start) - stepStart}..${Number(g.attrs.end) - stepStart} ms`,
      );
      // Gaps the first owners recorded at start (before any load) are not this step's.
      const gapsUnderLoad = gaps
        .filter((g) => Number(g.attrs.end) >= stepStart)
        .map((g) => `${String(g.attrs.reason)}@${String(g.attrs.node)}`);
      // Why a takeover could not replay (the instances' warn logs), when one recorded a gap.
      const takeovers = gaps.some((g) => String(g.attrs.reason).startsWith('ownership_'))
        ? `; takeovers ${JSON.stringify(takeoverWhy())}`
        : '';
      steps.push(
        `step ${n} (${fault}): ${detail}; offered ${JSON.stringify(offered)}; ${offBy ? `inventories off (instance kind inventory-cluster): ${offBy}; ` : ''}missing from the merged ledgers ${missing.written.length} written + ${missing.deleted.length} deleted (${accountedText || 'none accounted'}; ${unaccounted.length} unaccounted); gaps ${JSON.stringify(gapText)}${takeovers}; ${Date.now() - stepStart} ms`,
      );
      process.stdout.write(`cluster drill ${steps.at(-1)}\n`);
      results.push({
        fault: `HA cluster, 3 instances: ${fault}; ${detail}${accountedText ? `; not in the token.written/deleted union: ${accountedText}` : ''}${gapText.length > 0 ? `; gaps ${gapText.join(', ')}` : ''}`,
        offered,
        live: tokens.filter((r) => r.attrs.via !== 'reconcile').length,
        recovered: tokens.filter((r) => r.attrs.via === 'reconcile').length,
        gaps: gaps.length,
        finalDiff,
      });
      if (!account) expect(offered.failed, 'commands the load saw fail').toBe(0);
      // An inventory that stays off is diagnosed from the instances' warnings (CI keeps only
      // what the test prints).
      if (finalDiff !== 0) for (const i of running) process.stdout.write(logTail(i, 40));
      expect(finalDiff).toBe(0);
      expect(unaccounted).toEqual([]);
      if (!account) expect(gapsUnderLoad).toEqual([]);
    }

    try {
      // (1) The three instances spread the three masters 1/1/1 (before the load: what nobody
      // owns is nobody's to record), and keep it under load.
      await until(() => spreadOneEach(cluster, running), 120_000, 'spread 1/1/1').catch(
        async (err: unknown) => {
          // Who owns what, and why not (CI keeps only what the test prints).
          const masters = (await cluster.masters().catch(() => [])).map((m) => label(m.port));
          process.stdout.write(`cluster drill spread: masters ${JSON.stringify(masters)}\n`);
          for (const i of running) {
            process.stdout.write(`${i.id} /readyz ${(await get(i, '/readyz')) ?? 'no answer'}\n`);
            process.stdout.write(logTail(i, 40));
          }
          throw err;
        },
      );
      await step(1, 'masters spread 1/1/1', async () => {
        expect(await spreadOneEach(cluster, running)).toBe(true);
        return 'spread 1/1/1 under load';
      });

      // (2) kill -9 one instance: the two others cover its master within the lease.
      await step(2, 'one instance SIGKILLed', async () => {
        const victim = running[0] as Instance;
        const node = ((await owned(victim)) ?? [])[0] as string;
        expect(node).toBeDefined();
        running = running.slice(1);
        const exited = new Promise((r) => victim.child.once('exit', r));
        const killedAt = Date.now();
        victim.child.kill('SIGKILL');
        await exited;
        await until(
          async () => {
            for (const i of running) if ((await owned(i))?.includes(node)) return true;
            return false;
          },
          60_000,
          `${node} taken over`,
        );
        const takeoverMs = Date.now() - killedAt;
        await until(
          async () => {
            const counts = await Promise.all(running.map(async (i) => (await owned(i))?.length));
            return JSON.stringify(counts.sort()) === '[1,2]';
          },
          60_000,
          'spread 1/2',
        );
        // Lease TTL plus the readiness poll on a loaded machine.
        expect(takeoverMs).toBeLessThanOrEqual(LEASE_MS + 1500);
        return `its master taken over in ${takeoverMs} ms, spread 1/2`;
      });

      // (3) A new instance joins: 1/1/1 again, by graceful handover.
      await step(3, 'a new instance joined', async () => {
        const joined = await serve(dir, 'c-4', cluster, coordination.url);
        all.push(joined);
        running.push(joined);
        const at = Date.now();
        await until(() => spreadOneEach(cluster, running), 90_000, 'spread 1/1/1 again');
        const released = running
          .flatMap((i) => read(i.db, 'ownership.released'))
          .filter((r) => r.attrs.reason === 'handover');
        expect(released.length).toBeGreaterThanOrEqual(1);
        return `spread 1/1/1 again ${Date.now() - at} ms after its start (${released.length} handover)`;
      });

      // (4) kill -9 a Redis master: its replica is promoted and owned.
      const victim = (await cluster.masters())[0] as { port: number; slots: string[] };
      const ranges = slotRanges(victim.slots);
      const probe = cluster.client();
      await step(
        4,
        'a Redis master SIGKILLed',
        async () => {
          // The promoted replica serves the dead master's slots, so the assignment (by slots)
          // gives it to the dead master's owner: one inventory accounts for its tokens.
          // Owners settled: each master held by the instance desired for it.
          const keyOf = (m: { slots: string[] }) => slotIdentity(slotRanges(m.slots)) as string;
          const masters = await cluster.masters();
          const desired = assignNodes(
            masters.map(keyOf),
            running.map((i) => i.id),
          );
          await until(
            async () => {
              for (const m of masters) {
                const i = running.find((x) => x.id === desired.get(keyOf(m)));
                if (!i || !(await owned(i))?.includes(label(m.port))) return false;
              }
              return true;
            },
            30_000,
            'each master owned by its desired instance',
          );
          let lastOwner: Instance | undefined;
          for (const i of running)
            if ((await owned(i))?.includes(label(victim.port))) lastOwner = i;
          expect(lastOwner, 'the master to kill has an owner').toBeDefined();
          const killedAt = Date.now();
          await cluster.nodes.find((x) => x.port === victim.port)?.halt(true);
          await until(() => cluster.failedOver(victim.port), 60_000, 'replica promoted');
          await until(() => spreadOneEach(cluster, running), 90_000, 'promoted replica owned');
          const promoted = (await cluster.masters()).find((m) =>
            slotRanges(m.slots).some(([a]) => a === ranges[0]?.[0]),
          );
          expect(promoted, "the master serving the dead one's slots").toBeDefined();
          expect(await owned(lastOwner as Instance)).toEqual([label(promoted?.port ?? 0)]);
          return `replica promoted and owned (by ${lastOwner?.id}, the dead master's owner), spread 1/1/1, ${Date.now() - killedAt} ms`;
        },
        // As the [cluster] fault drill: the inventory equals what Redis holds after the
        // failover (the promotion's topology_change gap is reconciled). A write or deletion the
        // dead master acknowledged without its notification reaching tokenwatch is accounted
        // for only on the dead master's slots, and only as: reconciled (the replica had it:
        // token.appeared / token.vanished via reconcile), its end recorded later, or lost by
        // Redis itself (a write absent from the cluster now, a deletion not replicated).
        async (key, op, recorded) => {
          const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', key));
          if (!ranges.some(([a, b]) => slot >= a && slot <= b)) return '! not on the dead master';
          const present = (await probe.exists(key)) === 1;
          if (op === 'written') {
            if (recorded.has('token.appeared (reconcile)')) return 'writes reconciled';
            if (
              !present &&
              ['token.deleted', 'token.expired', 'token.vanished (reconcile)'].some((t) =>
                recorded.has(t),
              )
            )
              return 'writes unseen, their end recorded';
            if (!present && recorded.size === 0)
              return 'writes gone from Redis with the master, never seen';
            return undefined;
          }
          if (recorded.has('token.vanished (reconcile)')) return 'deletions reconciled';
          // A deletion the promoted replica acknowledged is in a ledger (docs/ha.md): reconciled
          // above, or recorded by the node's first owner. Only a deletion Redis lost may be
          // missing.
          if (!recorded.has('token.deleted') && (present || !recorded.has('token.written')))
            return 'deletions lost by Redis with the master (or of a lost key)';
          return `! on the dead master, ${present ? 'present' : 'absent'} now`;
        },
      );

      // Merged evidence: every ledger verifies and coverage holds.
      await Promise.all(
        running.map((i) => {
          const exited = new Promise((r) => i.child.once('exit', r));
          i.child.kill('SIGTERM');
          return exited;
        }),
      );
      const each = await Promise.all(all.map((i) => verifyBeside(i.db)));
      const merged = spawnSync(process.execPath, [CLI, 'verify', '--db', dir, '--json'], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      const mergedReport = JSON.parse(merged.stdout) as {
        ok: boolean;
        untrusted: string[];
        coverage: { problems: { class: string; node: string; span: { from: number } }[] };
      };
      // The killed master left the topology: its last owner released it as `removed`, which
      // ends the node's coverage window there (nobody is to own it afterwards).
      const dead = label(victim.port);
      const problems = mergedReport.coverage.problems;
      verdict =
        each.every((v) => v.ok) && mergedReport.untrusted.length === 0
          ? `${all.length} ledgers intact; merged coverage ${mergedReport.ok ? 'complete' : `INCOMPLETE (${problems.length} problems)`}`
          : 'failed';
      process.stdout.write(
        `cluster drill: ${((Date.now() - startedAt) / 1000).toFixed(1)} s, merged verify: ${verdict}\n`,
      );
      for (const v of each) expect(v.problems).toEqual([]);
      expect(mergedReport.untrusted).toEqual([]);
      expect(problems, merged.stdout).toEqual([]);
      expect(mergedReport.ok).toBe(true);
      const releases = all
        .flatMap((i) => read(i.db, 'ownership.released'))
        .filter((r) => r.attrs.node === dead)
        .sort((x, y) => x.time - y.time);
      expect(releases.at(-1)?.attrs.reason).toBe('removed');
    } finally {
      for (const r of results)
        report({
          fault: r.fault,
          offered: r.offered,
          observedLive: r.live,
          recovered: r.recovered,
          gaps: r.gaps,
          finalDiff: r.finalDiff,
          verify: verdict,
        });
    }
  }, 600_000);
});
