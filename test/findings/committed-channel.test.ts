import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CommittedChannel } from '../../src/audit/committed-channel.js';
import type { RecordFilter } from '../../src/audit/query.js';
import type { AuditInput, AuditRecord, Committed } from '../../src/audit/record.js';
import { parseConfig } from '../../src/config/load.js';
import type { DomainEvent } from '../../src/domain/domain-event.js';
import type { TokenEvent } from '../../src/domain/token-event.js';
import { FindingsService, type FindingsLedger } from '../../src/findings/findings-service.js';
import { createLogger } from '../../src/logger.js';
import { DEFAULT_TOKEN_RULES } from '../helpers/app-harness.js';

const FP = (s: string) => `hmac-sha256:k1:${Buffer.from(s).toString('hex').padEnd(64, '0')}`;
const NODE = '127.0.0.1:6379';
const T0 = Date.UTC(2026, 11, 3, 8);

/**
 * No ledger: what findings append is kept in memory, and the test publishes committed batches
 * on a CommittedChannel itself, with the seqs it chooses. The records it publishes carry no
 * attrs: the correlator can only have its events from the channel's typed events.
 */
class MemoryLedger implements FindingsLedger {
  readonly appended: { input: AuditInput; event?: DomainEvent }[] = [];
  readonly lastSeq = 0;
  append(input: AuditInput, event?: DomainEvent): void {
    this.appended.push(event ? { input, event } : { input });
  }
  list(_filter?: RecordFilter): AuditRecord[] {
    return [];
  }
  lastOfType(): AuditRecord | undefined {
    return undefined;
  }
}

function setup() {
  const clock = { t: T0 };
  const config = parseConfig(
    `audit:\n  path: /nonexistent/never-opened.db\ncorrelate:\n  revocationSlaSeconds: 2\n${DEFAULT_TOKEN_RULES}`,
    {},
  );
  const ledger = new MemoryLedger();
  const channel = new CommittedChannel();
  const service = new FindingsService({
    config,
    ledger,
    registry: new Registry(),
    logger: createLogger('error', new Writable({ write: (_c, _e, cb) => cb() })),
    now: () => clock.t,
  });
  channel.subscribe((batch) => service.onCommitted(batch));
  const publish = (...batch: Committed[]) => channel.publish(batch);
  return { clock, ledger, service, publish };
}

const bare = (source: AuditInput['source'], type: string, time: number): AuditInput => ({
  time,
  source,
  type,
});

function token(type: TokenEvent['type'], sid: string, at: number): DomainEvent {
  return {
    type: 'token',
    event: {
      type,
      kind: 'session',
      fingerprint: FP(sid),
      keyAttrs: { sid: FP(sid) },
      node: NODE,
      db: 0,
      observedAt: at,
      redisEvent: type === 'written' ? 'set' : type,
      ...(type === 'written' ? { dueAt: at + 600_000, ttlMs: 600_000 } : {}),
    },
  };
}

function logout(sid: string, id: string, at: number): DomainEvent {
  return {
    type: 'provider',
    event: {
      provider: 'keycloak',
      id,
      type: 'session_ended',
      occurredAt: at,
      observedAt: at,
      sessionId: FP(sid),
      tokenIds: [],
      outcome: 'success',
      vendorType: 'LOGOUT',
      attributes: {},
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('findings fed by the committed channel, without a ledger', () => {
  it('correlates typed token and provider events and cites the seqs they were published with', async () => {
    const { clock, ledger, service, publish } = setup();
    service.start();
    const t = clock.t;
    publish(
      { seq: 10, input: bare('redis', 'token.written', t), event: token('written', 'stuck', t) },
      {
        seq: 11,
        input: bare('provider', 'provider.session_ended', t),
        event: logout('stuck', 'evt-1', t),
      },
    );
    clock.t += 3000;
    service.tick(); // the SLA (2 s) passed with the session still in Redis
    const opened = ledger.appended.filter(
      (a) => a.input.type === 'finding.revocation_not_propagated',
    );
    expect(opened).toHaveLength(1);
    const f = opened[0]!;
    // The finding record carries its typed event for the channel once it commits.
    expect(f.event?.type).toBe('finding');
    if (f.event?.type !== 'finding') throw new Error('unreachable');
    expect(f.event.finding.state).toBe('opened');
    expect(f.event.finding.evidenceSeqs).toEqual(expect.arrayContaining([10, 11]));
    expect(f.input.attrs?.evidenceSeqs).toEqual(f.event.finding.evidenceSeqs);

    // The token goes: the finding resolves, citing the seq of the deletion.
    publish({
      seq: 12,
      input: bare('redis', 'token.deleted', clock.t),
      event: token('deleted', 'stuck', clock.t),
    });
    const resolved = ledger.appended.filter(
      (a) => a.event?.type === 'finding' && a.event.finding.state === 'resolved',
    );
    expect(resolved).toHaveLength(1);
    expect(resolved[0]?.input.attrs?.evidenceSeqs).toContain(12);
    await service.close();
  });

  it('applies a seq once: a batch published again, or an older one, changes nothing', async () => {
    const { clock, ledger, service, publish } = setup();
    service.start();
    const t = clock.t;
    const written: Committed = {
      seq: 5,
      input: bare('redis', 'token.written', t),
      event: {
        type: 'token',
        event: { ...tokenEvent('written', 'x', t), dueAt: null, ttlMs: null },
      },
    };
    publish(written);
    publish(written);
    const withoutExpiry = () =>
      ledger.appended.filter((a) => a.input.type === 'finding.token_without_expiry');
    expect(withoutExpiry()).toHaveLength(1);
    expect(withoutExpiry()[0]?.input.attrs?.evidenceSeqs).toEqual([5]);
    await service.close();
  });

  it('judges index observations from the channel', async () => {
    const { ledger, service, publish } = setup();
    service.start();
    publish({
      seq: 3,
      input: bare('redis', 'keyspace.index_reconcile', T0),
      event: {
        type: 'index',
        observations: [
          {
            index: 'user_sessions',
            kind: 'session',
            members: 10,
            orphans: 4,
            keysWithOrphans: 2,
            fingerprints: [FP('gone')],
          },
        ],
      },
    });
    const found = ledger.appended.filter((a) => a.input.type === 'finding.orphaned_index_entries');
    expect(found).toHaveLength(1);
    expect(found[0]?.input.attrs?.evidenceSeqs).toEqual([3]);
    await service.close();
  });
});

function tokenEvent(type: TokenEvent['type'], sid: string, at: number): TokenEvent {
  const d = token(type, sid, at);
  if (d.type !== 'token') throw new Error('unreachable');
  return d.event;
}
