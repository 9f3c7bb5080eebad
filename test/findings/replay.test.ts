import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Ledger } from '../../src/audit/ledger.js';
import type { AuditInput } from '../../src/audit/record.js';
import { parseConfig } from '../../src/config/load.js';
import type { TokenEvent } from '../../src/domain/token-event.js';
import { FindingsService } from '../../src/findings/findings-service.js';
import { createLogger } from '../../src/logger.js';
import { eventAuditInput } from '../../src/providers/ingest/audit-inputs.js';
import { DEFAULT_TOKEN_RULES } from '../helpers/app-harness.js';

const FP = (s: string) => `hmac-sha256:k1:${Buffer.from(s).toString('hex').padEnd(64, '0')}`;
const NODE = '127.0.0.1:6379';

/**
 * A findings service on a real SQLite ledger, wired like the app (commit listener), with a
 * hand-driven clock. `crash()` closes the ledger without the service's shutdown (no final
 * snapshot); timers are faked so nothing runs in between.
 */
class Run {
  readonly ledger: Ledger;
  readonly service: FindingsService;
  deliver = true;

  constructor(
    readonly dbPath: string,
    readonly clock: { t: number },
    snapshotMinRecords = 100_000,
  ) {
    const config = parseConfig(
      `audit:\n  path: ${dbPath}\ncorrelate:\n  revocationSlaSeconds: 2\n  snapshotMinRecords: ${snapshotMinRecords}\n${DEFAULT_TOKEN_RULES}`,
      {},
    );
    const logger = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));
    const ref: { s?: FindingsService } = {};
    this.ledger = new Ledger({
      path: dbPath,
      batchSize: 100,
      flushIntervalMs: 1,
      maxPending: 10_000,
      hmacKeyIds: ['k1'],
      writerThread: false,
      now: () => clock.t,
      onCommit: (batch) => {
        if (this.deliver) ref.s?.onCommitted(batch);
      },
    });
    this.service = new FindingsService({
      config,
      ledger: this.ledger,
      registry: new Registry(),
      logger,
      now: () => clock.t,
    });
    ref.s = this.service;
  }

  token(type: TokenEvent['type'], sid: string, extra: Partial<TokenEvent> = {}): void {
    const ev: TokenEvent = {
      type,
      kind: 'session',
      fingerprint: FP(sid),
      keyAttrs: { sid: FP(sid) },
      node: NODE,
      db: 0,
      // Received a few ms before the correlator runs, as in a real run: ids made from the
      // processing time then differ from ids a replay at record time would make.
      observedAt: this.clock.t - 7,
      redisEvent: type === 'written' ? 'set' : type,
      ...(type === 'written' ? { dueAt: this.clock.t + 600_000, ttlMs: 600_000 } : {}),
      ...extra,
    };
    // As KeyspaceRecorder.token writes it.
    const input: AuditInput = {
      time: ev.observedAt,
      source: 'redis',
      type: `token.${ev.type}`,
      kind: ev.kind,
      fingerprint: ev.fingerprint,
      attrs: {
        db: ev.db,
        dueAt: ev.dueAt,
        key: ev.keyAttrs,
        node: ev.node,
        redisEvent: ev.redisEvent,
        ttlMs: ev.ttlMs,
      },
    };
    this.ledger.append(input, { type: 'token', event: ev });
    this.ledger.flush();
  }

  logout(sid: string, id: string): void {
    const t = this.clock.t;
    this.ledger.append(
      eventAuditInput(
        {
          provider: 'keycloak',
          id,
          type: 'session_ended',
          occurredAt: t,
          observedAt: t,
          sessionId: FP(sid),
          tokenIds: [],
          outcome: 'success',
          vendorType: 'LOGOUT',
          attributes: {},
        },
        'push',
      ),
    );
    this.ledger.flush();
  }

  tick(): void {
    this.service.tick();
    this.ledger.flush();
  }

  findingRecords() {
    this.ledger.flush();
    return this.ledger.list({ type: 'finding.*' });
  }

  crash(): void {
    this.ledger.close();
  }
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tw-replay-'));
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
});
afterEach(() => {
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

describe('restore after a crash: snapshot + replay of the ledger after it', () => {
  it('re-derives findings under their recorded ids, writes nothing twice, and writes what the crash lost', () => {
    const clock = { t: Date.UTC(2026, 11, 3, 8) };
    const dbPath = join(dir, 'audit.db');
    const a = new Run(dbPath, clock);
    a.service.start(); // snapshot at start: everything after it is replayed
    a.token('written', 'immortal', { dueAt: null, ttlMs: null });
    a.token('written', 'stuck');
    a.logout('stuck', 'evt-1');
    a.token('written', 'quick');
    a.logout('quick', 'evt-2');
    a.token('deleted', 'quick'); // propagated at once: measured before the crash
    expect(a.ledger.list({ type: 'revocation.propagation' })).toHaveLength(1);
    clock.t += 3000;
    a.tick(); // SLA (2 s) breached
    const before = a.findingRecords();
    expect(before.map((r) => `${r.type}:${String(r.attrs.state)}`).sort()).toEqual([
      'finding.revocation_not_propagated:opened',
      'finding.token_without_expiry:opened',
    ]);
    // The last event commits but the crash comes before the correlator sees it.
    a.deliver = false;
    clock.t += 10;
    a.token('written', 'lost', { dueAt: null, ttlMs: null });
    a.crash();

    clock.t += 5000;
    const b = new Run(dbPath, clock);
    b.service.start();
    const report = b.service.restoreReport;
    expect(report).toMatchObject({ outcome: 'restored', replayedEvents: 7, undecodable: 0 });
    const after = b.findingRecords();
    const opened = after.filter((r) => r.attrs.state === 'opened');
    // Each finding recorded once: the two from before the crash, and the one the crash lost.
    expect(opened.map((r) => r.attrs.id)).toEqual([
      ...before.map((r) => r.attrs.id),
      expect.stringMatching(/^token_without_expiry:/),
    ]);
    expect(new Set(opened.map((r) => r.attrs.id)).size).toBe(3);
    const ids = b.service.openFindings().map((f) => f.id);
    expect(ids.sort()).toEqual(opened.map((r) => String(r.attrs.id)).sort());

    // After the restart they resolve normally, under the same ids.
    b.token('deleted', 'stuck');
    b.token('deleted', 'immortal');
    const resolved = b.findingRecords().filter((r) => r.attrs.state === 'resolved');
    expect(resolved.map((r) => r.attrs.id).sort()).toEqual(before.map((r) => r.attrs.id).sort());
    // Replay re-measured evt-2 but did not record it twice.
    const measured = b.ledger.list({ type: 'revocation.propagation' }).map((r) => r.attrs);
    expect(measured).toMatchObject([
      { providerEventId: 'evt-2', metSla: true },
      { providerEventId: 'evt-1', metSla: false },
    ]);
    b.crash();
  });

  it('resolves a restored finding when the start-up baseline finds its token gone', () => {
    const clock = { t: Date.UTC(2026, 11, 3, 8) };
    const dbPath = join(dir, 'audit.db');
    const a = new Run(dbPath, clock);
    a.service.start();
    a.token('written', 'immortal', { dueAt: null, ttlMs: null });
    void a.service.close();
    a.ledger.flush();
    a.crash();
    clock.t += 60_000;
    const b = new Run(dbPath, clock);
    b.service.start();
    expect(b.service.openFindings()).toHaveLength(1);
    // Someone deleted the key while tokenwatch was down; the baseline SCAN finds no token.
    b.ledger.append({
      time: clock.t,
      source: 'redis',
      type: 'keyspace.baseline',
      attrs: { node: NODE, counts: { session: 0 }, scanned: 0, unmatched: 0, durationMs: 1 },
    });
    b.ledger.flush();
    expect(b.service.openFindings()).toEqual([]);
    const [, resolved] = b.findingRecords();
    expect(resolved?.attrs).toMatchObject({
      state: 'resolved',
      attributes: { resolution: 'left_redis', endType: 'vanished' },
    });
    b.crash();
  });

  it('snapshots on the interval only once snapshotMinRecords records were correlated since the last one', async () => {
    const clock = { t: Date.UTC(2026, 11, 3, 8) };
    const a = new Run(join(dir, 'audit.db'), clock, 2);
    a.service.start();
    // Interval snapshots are written part by part on later turns, each after the last commits.
    const snapshots = async () => {
      for (let i = 0; i < 20; i++) {
        a.ledger.flush();
        await new Promise((r) => setTimeout(r, 0));
      }
      a.ledger.flush();
      return a.ledger.list({ type: 'correlator.snapshot' }).map((r) => r.attrs.reason);
    };
    expect(await snapshots()).toEqual(['start']);
    vi.advanceTimersByTime(60_000);
    expect(await snapshots()).toEqual(['start']); // idle
    a.token('written', 's1');
    vi.advanceTimersByTime(60_000);
    expect(await snapshots()).toEqual(['start']); // one record to replay: not worth a snapshot
    a.token('written', 's2');
    vi.advanceTimersByTime(60_000);
    expect(await snapshots()).toEqual(['start', 'interval']);
    vi.advanceTimersByTime(60_000);
    expect(await snapshots()).toEqual(['start', 'interval']);
    a.crash();
    const b = new Run(join(dir, 'audit.db'), clock);
    b.service.start();
    expect(b.service.restoreReport).toMatchObject({ outcome: 'restored', replayedEvents: 0 });
    b.crash();
  });

  it('after a crash in the middle of a split snapshot, restores the one before it and replays', async () => {
    const clock = { t: Date.UTC(2026, 11, 3, 8) };
    const dbPath = join(dir, 'audit.db');
    const a = new Run(dbPath, clock, 1);
    a.service.start();
    a.ledger.flush();
    const start = a.ledger.list({ type: 'correlator.snapshot' });
    expect(start).toHaveLength(1);
    // Enough open findings for a snapshot of several parts.
    for (let i = 0; i < 300; i++) a.token('written', `immortal-${i}`, { dueAt: null, ttlMs: null });
    vi.advanceTimersByTime(60_000);
    // Until the first part is committed, and no further: parts go one per commit on later
    // turns, the head after the last, so a fixed number of turns could (and on a fast turn
    // did) reach the head of a two-part snapshot.
    const parts = () => a.ledger.list({ type: 'correlator.snapshot_part' }).length;
    for (let i = 0; i < 50 && parts() === 0; i++) {
      await new Promise((r) => setTimeout(r, 0));
      a.ledger.flush();
    }
    expect(parts()).toBeGreaterThan(0);
    expect(a.ledger.list({ type: 'correlator.snapshot' })).toEqual(start); // head not yet written
    a.crash();
    const b = new Run(dbPath, clock);
    b.service.start();
    expect(b.service.restoreReport).toMatchObject({
      outcome: 'restored',
      snapshotSeq: start[0]?.seq,
      replayedEvents: 300,
      incomplete: [],
    });
    expect(b.service.openFindings()).toHaveLength(300);
    b.crash();
  });

  it('records a snapshot it cannot restore as rejected and starts empty', () => {
    const clock = { t: Date.UTC(2026, 11, 3, 8) };
    const dbPath = join(dir, 'audit.db');
    const a = new Run(dbPath, clock);
    a.service.start();
    a.ledger.append({
      time: clock.t,
      source: 'correlator',
      type: 'correlator.snapshot',
      attrs: { reason: 'interval', throughSeq: 1, state: { version: 99 } },
    });
    a.crash();
    const b = new Run(dbPath, clock);
    b.service.start();
    expect(b.service.restoreReport).toMatchObject({ outcome: 'rejected' });
    b.ledger.flush();
    const [rec] = b.ledger.list({ type: 'correlator.restored' }).slice(-1);
    expect(rec?.attrs).toMatchObject({ outcome: 'rejected' });
    expect(String(rec?.attrs.reason)).toMatch(/version/);
    b.crash();
  });

  it('a clean shutdown leaves nothing to replay', () => {
    const clock = { t: Date.UTC(2026, 11, 3, 8) };
    const dbPath = join(dir, 'audit.db');
    const a = new Run(dbPath, clock);
    a.service.start();
    a.token('written', 'immortal', { dueAt: null, ttlMs: null });
    void a.service.close();
    a.ledger.flush();
    a.crash();
    const b = new Run(dbPath, clock);
    b.service.start();
    expect(b.service.restoreReport).toMatchObject({ outcome: 'restored', replayedEvents: 0 });
    expect(b.service.openFindings().map((f) => f.rule)).toEqual(['token_without_expiry']);
    b.crash();
  });
});
