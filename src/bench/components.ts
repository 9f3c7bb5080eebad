import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Fingerprinter } from '../audit/fingerprint.js';
import { Ledger } from '../audit/ledger.js';
import type { AuditInput } from '../audit/record.js';
import { RowWriter } from '../audit/row-writer.js';
import { tokenRuleSchema } from '../config/schema.js';
import { Correlator } from '../correlate/correlator.js';
import type { TokenEvent } from '../domain/token-event.js';
import { KeyEventApplier } from '../keyspace/event-applier.js';
import { Inventory } from '../keyspace/inventory.js';
import { planLookup, recordExpiries, type Item } from '../keyspace/notification-batch.js';
import { KeyspaceRecorder } from '../keyspace/recorder.js';
import { TokenRules } from '../keyspace/token-rules.js';
import { createMetrics } from '../metrics/registry.js';

/**
 * The event loop's per-event stages of scenario 1 alone, each in a tight loop in this one
 * process, without Redis or the writer thread (issue #19): `node dist/bench/components.js
 * [--rounds 15] [--events 20000]`. On a shared machine whose drain figures move by ±15 % from
 * one run to the next, these move by a few percent: run two builds alternately to compare them.
 *
 * - keyspace: a SET EX's `set` + `expire` classified (HMAC of the token), its expiry look-up
 *   reply recorded, translated, written to the inventory and reported (metrics, audit append).
 * - ledgerEncode: one `token.written` record as the recorder makes it, compact-encoded, leaf and
 *   chain hashed (RowWriter without a connection, as the threaded committer encodes).
 * - correlator: one `token.written` of a new token through Correlator.onTokenEvent.
 *
 * Prints one JSON line: the best ns per event of each stage over `rounds` rounds of `events`
 * (fresh tokens each round).
 */
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '15' },
    events: { type: 'string', default: '20000' },
  },
});
const ROUNDS = Number(values.rounds);
const N = Number(values.events);
const KIND = 'access_token';
const NODE = '127.0.0.1:6379';

const fingerprinter = new Fingerprinter([{ id: 'k1', key: randomBytes(32) }]);
const fingerprints = (round: number): string[] =>
  Array.from({ length: N }, (_, i) =>
    fingerprinter.of(createHmac('sha256', `r${round}`).update(String(i)).digest('hex')),
  );

const best = { keyspace: Infinity, ledgerEncode: Infinity, correlator: Infinity };
const time = (stage: keyof typeof best, run: () => void): void => {
  const t0 = process.hrtime.bigint();
  run();
  best[stage] = Math.min(best[stage], Number(process.hrtime.bigint() - t0) / N);
};

// keyspace: the recorder appends to a real ledger (inline committer, flushed between rounds).
const dir = mkdtempSync(join(tmpdir(), 'tw-bench-components-'));
const ledger = new Ledger({
  path: join(dir, 'audit.db'),
  batchSize: 1000,
  flushIntervalMs: 1e9,
  maxPending: 10 * N,
  hmacKeyIds: ['k1'],
  writerThread: false,
});
const rules = new TokenRules(
  [tokenRuleSchema.parse({ kind: KIND, key: 'oauth:access:{token}' })],
  fingerprinter,
);
const inventory = new Inventory([KIND], fingerprinter.prefix);
const applier = new KeyEventApplier({
  nodeIndex: 0,
  label: NODE,
  db: 0,
  commands: undefined as never, // the look-up's reply is recorded by hand below
  rules,
  inventory,
  sink: new KeyspaceRecorder(ledger, createMetrics([KIND], { defaultMetrics: false }), 0),
  maxKeyBytes: 512,
  expiryBacklogToleranceMs: 2000,
  logger: pino({ level: 'silent' }),
});

const rows = new RowWriter();
let seq = 0;
const correlator = new Correlator(
  { kinds: [{ kind: KIND, maxTtlSeconds: 3600 }] },
  { clock: { now: () => Date.now() } },
);
let evidence = 0;

for (let r = 0; r < ROUNDS; r++) {
  const now = Date.now();
  const items: Item[] = [];
  for (let i = 0; i < N; i++) {
    const key = Buffer.from(`oauth:access:${randomBytes(12).toString('hex')}`);
    items.push({ event: 'set', key, at: now }, { event: 'expire', key, at: now });
  }
  time('keyspace', () => {
    for (let at = 0; at < items.length; at += 2000) {
      const prepared = applier.classify(items.slice(at, at + 2000));
      const need = planLookup(prepared);
      recordExpiries(
        need,
        need.map(() => now + 3_600_000),
      );
      applier.markExpiryFlush(prepared);
      applier.applyBatch(prepared);
    }
  });
  ledger.flush();

  const fps = fingerprints(r);
  const inputs: AuditInput[] = fps.map((fingerprint) => ({
    time: now,
    source: 'redis',
    type: 'token.written',
    kind: KIND,
    fingerprint,
    // As the recorder writes a SET EX's record (keys in canonical order, the absent ones left out).
    attrs: {
      db: 0,
      dueAt: now + 3_600_000,
      key: { token: fingerprint },
      node: NODE,
      redisEvent: 'set',
      ttlMs: 3_600_000,
    },
  }));
  time('ledgerEncode', () => {
    rows.begin(seq, Buffer.alloc(32), now);
    for (let i = 0; i < N; i++) {
      seq = rows.add(inputs[i] as AuditInput);
      if (i % 1000 === 999) {
        rows.end();
        rows.begin(seq, Buffer.alloc(32), now);
      }
    }
    rows.end();
  });

  const events: TokenEvent[] = fingerprints(r + ROUNDS).map((fingerprint) => ({
    type: 'written',
    kind: KIND,
    fingerprint,
    keyAttrs: { token: fingerprint },
    node: NODE,
    db: 0,
    observedAt: now,
    dueAt: now + 3_600_000,
    ttlMs: 3_600_000,
    redisEvent: 'set',
  }));
  time('correlator', () => {
    for (const ev of events) correlator.onTokenEvent(ev, ++evidence);
  });
}
ledger.close();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(
  `${JSON.stringify({
    rounds: ROUNDS,
    events: N,
    nsPerEvent: Object.fromEntries(Object.entries(best).map(([k, v]) => [k, Math.round(v)])),
  })}\n`,
);
