import { describe, expect, it } from 'vitest';
import { NOW, run, type Entries, type Ev, type Note, type Run } from './translation-harness.js';

/**
 * Issue #18.3: one case per Redis behaviour. Each input is the keyevent sequence Redis 7.0.15
 * really publishes for the command (recorded with `redis-cli psubscribe '__keyevent@*'` and
 * `notify-keyspace-events Eg$hxe`, tokenwatch's flags: no `new`), and `pexpiretime` is what
 * PEXPIRETIME answers when the batch's look-up runs. Notification i arrives at NOW + i ms.
 * Token keys: `at:{token}` (access_token) and `sess:{sid}` (session); anything else is not a token.
 */

const D = NOW + 100_000;
const LIVE: Entries = { 'at:a': { due: D, written: NOW - 5000 } };

interface Case extends Run {
  name: string;
  events: Ev[];
  /** The inventory after, by key name (omitted: not checked). */
  after?: Record<string, { due: number | null; written: number; node?: number }>;
  unmatched?: number;
}

const one = (...notes: Note[]): Note[][] => [notes];

const cases: Case[] = [
  // --- SET family -------------------------------------------------------------------------
  {
    name: 'SET k v: written without TTL',
    batches: one(['set', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      { type: 'written', key: 'at:a', redisEvent: 'set', observedAt: 0, dueAt: null, ttlMs: null },
    ],
    after: { 'at:a': { due: null, written: NOW } },
  },
  {
    name: 'SET k v EX 100 (set + expire): one written carrying the TTL',
    batches: one(['set', 'at:a'], ['expire', 'at:a']),
    pexpiretime: { 'at:a': D },
    events: [
      { type: 'written', key: 'at:a', redisEvent: 'set', observedAt: 0, dueAt: D, ttlMs: 100_000 },
    ],
    after: { 'at:a': { due: D, written: NOW } },
  },
  {
    name: 'SET k v KEEPTTL on a live token (set only): a rewrite keeping its due',
    before: LIVE,
    batches: one(['set', 'at:a']),
    pexpiretime: { 'at:a': D },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: D,
        ttlMs: 100_000,
        rewrite: true,
      },
    ],
    after: { 'at:a': { due: D, written: NOW } },
  },
  {
    name: 'SET k v without KEEPTTL on a live token with TTL (set only): Redis dropped the TTL',
    before: LIVE,
    batches: one(['set', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: null,
        ttlMs: null,
        rewrite: true,
      },
    ],
    after: { 'at:a': { due: null, written: NOW } },
  },
  {
    name: 'SET k v GET on a live token (set only): a rewrite',
    before: { 'at:a': { due: null, written: NOW - 5000 } },
    batches: one(['set', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: null,
        ttlMs: null,
        rewrite: true,
      },
    ],
  },
  {
    name: 'SETEX k 100 v (set + expire): written with the TTL',
    batches: one(['set', 'sess:s'], ['expire', 'sess:s']),
    pexpiretime: { 'sess:s': D },
    events: [
      {
        type: 'written',
        key: 'sess:s',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: D,
        ttlMs: 100_000,
      },
    ],
    after: { 'sess:s': { due: D, written: NOW } },
  },
  {
    name: 'PSETEX k 100500 v (set + expire): written with the ms TTL',
    batches: one(['set', 'sess:s'], ['expire', 'sess:s']),
    pexpiretime: { 'sess:s': NOW + 100_500 },
    events: [
      {
        type: 'written',
        key: 'sess:s',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: NOW + 100_500,
        ttlMs: 100_500,
      },
    ],
  },
  {
    name: 'SET EX whose look-up finds no TTL (removed again before it ran): TTL unknown, not "none"',
    batches: one(['set', 'at:a'], ['expire', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
    ],
    after: { 'at:a': { due: Number.NaN, written: NOW } },
  },
  {
    name: 'SET whose key is gone when looked up (-2): TTL unknown',
    batches: one(['set', 'at:a']),
    pexpiretime: {},
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
    ],
  },
  {
    name: 'SET whose look-up fails: TTL unknown',
    batches: one(['set', 'at:a']),
    pexpiretime: 'fail',
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
    ],
  },
  // --- GETEX / GETDEL -----------------------------------------------------------------------
  {
    name: 'GETEX k EX 200 on a live token (expire): ttl_changed, write time kept',
    before: LIVE,
    batches: one(['expire', 'at:a']),
    pexpiretime: { 'at:a': NOW + 200_000 },
    events: [
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 0,
        dueAt: NOW + 200_000,
        ttlMs: 200_000,
      },
    ],
    after: { 'at:a': { due: NOW + 200_000, written: NOW - 5000 } },
  },
  {
    name: 'GETEX k PERSIST (persist): persisted, a token that never expires',
    before: LIVE,
    batches: one(['persist', 'at:a']),
    events: [
      {
        type: 'persisted',
        key: 'at:a',
        redisEvent: 'persist',
        observedAt: 0,
        dueAt: null,
        ttlMs: null,
      },
    ],
    after: { 'at:a': { due: null, written: NOW - 5000 } },
  },
  {
    name: 'GETEX k without options, GET, PERSIST of a key without TTL: no notification, nothing',
    before: LIVE,
    batches: [[]],
    events: [],
    after: { 'at:a': { due: D, written: NOW - 5000 } },
  },
  {
    name: 'GETDEL k (del): deleted with its lifetime',
    before: LIVE,
    batches: one(['del', 'at:a']),
    events: [{ type: 'deleted', key: 'at:a', redisEvent: 'del', observedAt: 0, lifetimeMs: 5000 }],
    after: {},
  },
  // --- EXPIRE family ------------------------------------------------------------------------
  {
    name: 'EXPIRE k 300 (expire): ttl_changed',
    before: LIVE,
    batches: one(['expire', 'at:a']),
    pexpiretime: { 'at:a': NOW + 300_000 },
    events: [
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 0,
        dueAt: NOW + 300_000,
        ttlMs: 300_000,
      },
    ],
  },
  {
    name: 'PEXPIRE k 400001 (expire): ttl_changed to the ms',
    before: LIVE,
    batches: one(['expire', 'at:a']),
    pexpiretime: { 'at:a': NOW + 400_001 },
    events: [
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 0,
        dueAt: NOW + 400_001,
        ttlMs: 400_001,
      },
    ],
  },
  {
    name: 'EXPIREAT k <past> (Redis emits del): deleted, not expired',
    before: LIVE,
    batches: one(['del', 'at:a']),
    events: [{ type: 'deleted', key: 'at:a', redisEvent: 'del', observedAt: 0, lifetimeMs: 5000 }],
    after: {},
  },
  {
    name: 'EXPIREAT k <future> on a token without TTL (expire): ttl_changed',
    before: { 'at:a': { due: null, written: NOW - 5000 } },
    batches: one(['expire', 'at:a']),
    pexpiretime: { 'at:a': 4_000_000_000_000 },
    events: [
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 0,
        dueAt: 4_000_000_000_000,
        ttlMs: 4_000_000_000_000 - NOW,
      },
    ],
    after: { 'at:a': { due: 4_000_000_000_000, written: NOW - 5000 } },
  },
  {
    name: 'EXPIRE of a token never seen (expire): ttl_changed, write time unknown (0)',
    batches: one(['expire', 'at:a']),
    pexpiretime: { 'at:a': D },
    events: [
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 0,
        dueAt: D,
        ttlMs: 100_000,
      },
    ],
    after: { 'at:a': { due: D, written: 0 } },
  },
  {
    name: 'EXPIRE whose look-up finds no TTL (a PERSIST raced it): ttl_changed with TTL unknown',
    before: LIVE,
    batches: one(['expire', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
    ],
    after: { 'at:a': { due: Number.NaN, written: NOW - 5000 } },
  },
  {
    name: 'EXPIRE whose look-up finds no TTL, on a token held without TTL: ttl_changed, TTL unknown',
    before: { 'at:a': { due: null, written: NOW - 5000 } },
    batches: one(['expire', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
    ],
  },
  {
    name: 'PERSIST k (persist) of a token never seen: persisted, write time unknown (0)',
    batches: one(['persist', 'at:a']),
    events: [
      {
        type: 'persisted',
        key: 'at:a',
        redisEvent: 'persist',
        observedAt: 0,
        dueAt: null,
        ttlMs: null,
      },
    ],
    after: { 'at:a': { due: null, written: 0 } },
  },
  // --- RENAME / COPY / RESTORE --------------------------------------------------------------
  {
    name: 'RENAME token -> token: renamed, keeping TTL and write time of the old entry',
    before: LIVE,
    batches: one(['rename_from', 'at:a'], ['rename_to', 'at:b']),
    pexpiretime: { 'at:b': NOW + 1 },
    events: [
      {
        type: 'renamed',
        key: 'at:b',
        redisEvent: 'rename_to',
        observedAt: 1,
        dueAt: D,
        ttlMs: 99_999,
        renamedFrom: 'at:a',
      },
    ],
    after: { 'at:b': { due: D, written: NOW - 5000 } },
  },
  {
    name: 'RENAME of a token not in the inventory -> token: renamed, TTL from the look-up',
    batches: one(['rename_from', 'at:a'], ['rename_to', 'at:b']),
    pexpiretime: { 'at:b': D },
    events: [
      {
        type: 'renamed',
        key: 'at:b',
        redisEvent: 'rename_to',
        observedAt: 1,
        dueAt: D,
        ttlMs: 99_999,
        renamedFrom: 'at:a',
      },
    ],
    after: { 'at:b': { due: D, written: NOW + 1 } },
  },
  {
    name: 'RENAME non-token -> token: written, TTL from the look-up',
    batches: one(['rename_from', 'other'], ['rename_to', 'at:b']),
    pexpiretime: { 'at:b': D },
    events: [
      {
        type: 'written',
        key: 'at:b',
        redisEvent: 'rename_to',
        observedAt: 1,
        dueAt: D,
        ttlMs: 99_999,
      },
    ],
    after: { 'at:b': { due: D, written: NOW + 1 } },
    unmatched: 1,
  },
  {
    name: 'RENAME non-token -> live token: a rewrite of it (as a SET over it), TTL from the look-up',
    before: { 'at:b': { due: null, written: NOW - 9000 } },
    batches: one(['rename_from', 'other'], ['rename_to', 'at:b']),
    pexpiretime: { 'at:b': D },
    events: [
      {
        type: 'written',
        key: 'at:b',
        redisEvent: 'rename_to',
        observedAt: 1,
        dueAt: D,
        ttlMs: 99_999,
        rewrite: true,
      },
    ],
    after: { 'at:b': { due: D, written: NOW + 1 } },
    unmatched: 1,
  },
  {
    name: 'RENAME token -> non-token: the token is deleted',
    before: LIVE,
    batches: one(['rename_from', 'at:a'], ['rename_to', 'other']),
    events: [
      { type: 'deleted', key: 'at:a', redisEvent: 'rename_to', observedAt: 1, lifetimeMs: 5001 },
    ],
    after: {},
    unmatched: 0,
  },
  {
    name: 'RENAME non-token -> non-token: nothing',
    batches: one(['rename_from', 'other'], ['rename_to', 'other2']),
    events: [],
    unmatched: 1,
  },
  {
    name: 'RENAME token -> live token (Redis sends no del for the overwritten one): it is deleted, then renamed over',
    before: { ...LIVE, 'at:b': { due: null, written: NOW - 9000 } },
    batches: one(['rename_from', 'at:a'], ['rename_to', 'at:b']),
    pexpiretime: { 'at:b': D },
    events: [
      { type: 'deleted', key: 'at:b', redisEvent: 'rename_to', observedAt: 1, lifetimeMs: 9001 },
      {
        type: 'renamed',
        key: 'at:b',
        redisEvent: 'rename_to',
        observedAt: 1,
        dueAt: D,
        ttlMs: 99_999,
        renamedFrom: 'at:a',
      },
    ],
    after: { 'at:b': { due: D, written: NOW - 5000 } },
  },
  {
    name: 'RENAME split across batches (rename_from ends one, rename_to opens the next): renamed',
    before: LIVE,
    batches: [[['rename_from', 'at:a']], [['rename_to', 'at:b']]],
    pexpiretime: { 'at:b': D },
    events: [
      {
        type: 'renamed',
        key: 'at:b',
        redisEvent: 'rename_to',
        observedAt: 1,
        dueAt: D,
        ttlMs: 99_999,
        renamedFrom: 'at:a',
      },
    ],
    after: { 'at:b': { due: D, written: NOW - 5000 } },
  },
  {
    name: 'COPY src dst (copy_to): written with the looked-up TTL',
    batches: one(['copy_to', 'at:c']),
    pexpiretime: { 'at:c': D },
    events: [
      {
        type: 'written',
        key: 'at:c',
        redisEvent: 'copy_to',
        observedAt: 0,
        dueAt: D,
        ttlMs: 100_000,
      },
    ],
    after: { 'at:c': { due: D, written: NOW } },
  },
  {
    name: 'COPY src dst REPLACE onto a live token (copy_to): a rewrite',
    before: LIVE,
    batches: one(['copy_to', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'copy_to',
        observedAt: 0,
        dueAt: null,
        ttlMs: null,
        rewrite: true,
      },
    ],
  },
  {
    name: 'RESTORE k 60000 payload (restore only, no expire): written with the TTL',
    batches: one(['restore', 'at:r']),
    pexpiretime: { 'at:r': NOW + 60_000 },
    events: [
      {
        type: 'written',
        key: 'at:r',
        redisEvent: 'restore',
        observedAt: 0,
        dueAt: NOW + 60_000,
        ttlMs: 60_000,
      },
    ],
  },
  {
    name: 'RESTORE of a Cluster slot migration (claimed on arrival): no event',
    before: { 'at:r': { due: D, written: NOW - 1000 } },
    migrated: ['at:r'],
    batches: one(['restore', 'at:r']),
    pexpiretime: { 'at:r': D },
    events: [],
    after: { 'at:r': { due: D, written: NOW - 1000 } },
  },
  // --- hashes -------------------------------------------------------------------------------
  {
    name: 'first HSET (hset): written',
    batches: one(['hset', 'sess:h']),
    pexpiretime: { 'sess:h': -1 },
    events: [
      {
        type: 'written',
        key: 'sess:h',
        redisEvent: 'hset',
        observedAt: 0,
        dueAt: null,
        ttlMs: null,
      },
    ],
    after: { 'sess:h': { due: null, written: NOW } },
  },
  {
    name: 'later HSET of a live hash (hset): no event',
    before: { 'sess:h': { due: D, written: NOW - 1000 } },
    batches: one(['hset', 'sess:h']),
    pexpiretime: { 'sess:h': D },
    events: [],
    after: { 'sess:h': { due: D, written: NOW - 1000 } },
  },
  {
    name: 'later HSET of a live hash whose TTL we do not know (hset): still no event',
    before: { 'sess:h': { due: Number.NaN, written: NOW - 1000 } },
    batches: one(['hset', 'sess:h']),
    pexpiretime: { 'sess:h': D },
    events: [],
    after: { 'sess:h': { due: Number.NaN, written: NOW - 1000 } },
  },
  {
    name: 'MULTI HSET; EXPIRE on a new hash (hset + expire): written with the TTL',
    batches: one(['hset', 'sess:h'], ['expire', 'sess:h']),
    pexpiretime: { 'sess:h': D },
    events: [
      {
        type: 'written',
        key: 'sess:h',
        redisEvent: 'hset',
        observedAt: 0,
        dueAt: D,
        ttlMs: 100_000,
      },
    ],
  },
  {
    name: 'MULTI HSET; EXPIRE on a live hash (hset + expire): ttl_changed',
    before: { 'sess:h': { due: D, written: NOW - 1000 } },
    batches: one(['hset', 'sess:h'], ['expire', 'sess:h']),
    pexpiretime: { 'sess:h': NOW + 50_000 },
    events: [
      {
        type: 'ttl_changed',
        key: 'sess:h',
        redisEvent: 'hset',
        observedAt: 0,
        dueAt: NOW + 50_000,
        ttlMs: 50_000,
      },
    ],
    after: { 'sess:h': { due: NOW + 50_000, written: NOW - 1000 } },
  },
  {
    name: 'MULTI HSET; EXPIRE on a live hash to the due it had: no event',
    before: { 'sess:h': { due: D, written: NOW - 1000 } },
    batches: one(['hset', 'sess:h'], ['expire', 'sess:h']),
    pexpiretime: { 'sess:h': D },
    events: [],
  },
  {
    name: 'MULTI HSET; EXPIRE on a live hash whose look-up finds no TTL: no event',
    before: { 'sess:h': { due: D, written: NOW - 1000 } },
    batches: one(['hset', 'sess:h'], ['expire', 'sess:h']),
    pexpiretime: { 'sess:h': -1 },
    events: [],
    after: { 'sess:h': { due: D, written: NOW - 1000 } },
  },
  {
    name: 'MULTI HSET; EXPIRE on a live hash whose look-up fails: no event',
    before: { 'sess:h': { due: D, written: NOW - 1000 } },
    batches: one(['hset', 'sess:h'], ['expire', 'sess:h']),
    pexpiretime: 'fail',
    events: [],
  },
  {
    name: 'HDEL of the last field (hdel + del): deleted',
    before: { 'sess:h': { due: D, written: NOW - 1000 } },
    batches: one(['hdel', 'sess:h'], ['del', 'sess:h']),
    events: [
      { type: 'deleted', key: 'sess:h', redisEvent: 'del', observedAt: 1, lifetimeMs: 1001 },
    ],
    after: {},
  },
  // --- ends ---------------------------------------------------------------------------------
  {
    name: 'DEL k1 k2 (one del each): two deleted',
    before: { ...LIVE, 'sess:h': { due: null, written: NOW - 7000 } },
    batches: one(['del', 'sess:h'], ['del', 'at:a']),
    events: [
      { type: 'deleted', key: 'sess:h', redisEvent: 'del', observedAt: 0, lifetimeMs: 7000 },
      { type: 'deleted', key: 'at:a', redisEvent: 'del', observedAt: 1, lifetimeMs: 5001 },
    ],
    after: {},
  },
  {
    name: 'UNLINK of a token never seen (del): deleted without a lifetime',
    batches: one(['del', 'at:x']),
    events: [{ type: 'deleted', key: 'at:x', redisEvent: 'del', observedAt: 0 }],
  },
  {
    name: 'DEL of a token found by SCAN (write time 0): deleted without a lifetime',
    before: { 'at:a': { due: D, written: 0 } },
    batches: one(['del', 'at:a']),
    events: [{ type: 'deleted', key: 'at:a', redisEvent: 'del', observedAt: 0 }],
  },
  {
    name: 'DEL just after the write (same ms): lifetime 0',
    before: { 'at:a': { due: D, written: NOW } },
    batches: one(['del', 'at:a']),
    events: [{ type: 'deleted', key: 'at:a', redisEvent: 'del', observedAt: 0, lifetimeMs: 0 }],
  },
  {
    name: 'DEL on the source node of a slot migration (token held by another node): no event',
    before: { 'at:a': { due: D, written: NOW - 5000, node: 1 } },
    batches: one(['del', 'at:a']),
    events: [],
    after: { 'at:a': { due: D, written: NOW - 5000, node: 1 } },
  },
  {
    name: 'expired on time: lag measured, churn',
    before: { 'at:a': { due: NOW - 500, written: NOW - 60_000 } },
    batches: one(['expired', 'at:a']),
    events: [
      {
        type: 'expired',
        key: 'at:a',
        redisEvent: 'expired',
        observedAt: 0,
        lifetimeMs: 60_000,
        expiryLagMs: 500,
      },
    ],
    after: {},
  },
  {
    name: 'expired exactly at the tolerance: churn',
    before: { 'at:a': { due: NOW - 2000, written: NOW - 60_000 } },
    batches: one(['expired', 'at:a']),
    events: [
      {
        type: 'expired',
        key: 'at:a',
        redisEvent: 'expired',
        observedAt: 0,
        lifetimeMs: 60_000,
        expiryLagMs: 2000,
      },
    ],
  },
  {
    name: 'expired past the tolerance (lazy expiry): backlog',
    before: { 'at:a': { due: NOW - 2001, written: NOW - 60_000 } },
    batches: one(['expired', 'at:a']),
    events: [
      {
        type: 'expired',
        key: 'at:a',
        redisEvent: 'expired',
        observedAt: 0,
        lifetimeMs: 60_000,
        expiryLagMs: 2001,
        backlog: true,
      },
    ],
  },
  {
    name: 'expired with the Redis clock 5 s ahead: lag on our clock',
    before: { 'at:a': { due: NOW + 5000 - 300, written: NOW - 60_000 } },
    ctx: { offsetMs: 5000 },
    batches: one(['expired', 'at:a']),
    events: [
      {
        type: 'expired',
        key: 'at:a',
        redisEvent: 'expired',
        observedAt: 0,
        lifetimeMs: 60_000,
        expiryLagMs: 300,
      },
    ],
  },
  {
    name: 'expired of a token whose due is unknown or none: no lag',
    before: {
      'at:a': { due: Number.NaN, written: NOW - 10 },
      'at:b': { due: null, written: NOW - 10 },
    },
    batches: one(['expired', 'at:a'], ['expired', 'at:b']),
    events: [
      { type: 'expired', key: 'at:a', redisEvent: 'expired', observedAt: 0, lifetimeMs: 10 },
      { type: 'expired', key: 'at:b', redisEvent: 'expired', observedAt: 1, lifetimeMs: 11 },
    ],
  },
  {
    name: 'expired during our own SCAN: backlog whatever its lag',
    before: { 'at:a': { due: NOW - 10, written: NOW - 60_000 } },
    ctx: { ownScan: { start: NOW, end: undefined } },
    batches: one(['expired', 'at:a']),
    events: [
      {
        type: 'expired',
        key: 'at:a',
        redisEvent: 'expired',
        observedAt: 0,
        lifetimeMs: 60_000,
        expiryLagMs: 10,
        backlog: true,
      },
    ],
  },
  {
    name: 'expired at the last ms of our own SCAN: backlog',
    before: { 'at:a': { due: NOW - 10, written: NOW - 60_000 } },
    ctx: { ownScan: { start: NOW - 100, end: NOW } },
    batches: one(['expired', 'at:a']),
    events: [
      {
        type: 'expired',
        key: 'at:a',
        redisEvent: 'expired',
        observedAt: 0,
        lifetimeMs: 60_000,
        expiryLagMs: 10,
        backlog: true,
      },
    ],
  },
  {
    name: 'expired before, during and after our own SCAN: churn, backlog, churn',
    before: {
      'at:a': { due: NOW - 10, written: NOW - 60_000 },
      'at:b': { due: NOW - 10, written: NOW - 60_000 },
      'at:c': { due: NOW - 10, written: NOW - 60_000 },
    },
    ctx: { ownScan: { start: NOW + 1, end: NOW + 1 } },
    batches: [[['expired', 'at:a']], [['expired', 'at:b']], [['expired', 'at:c']]],
    events: [
      {
        type: 'expired',
        key: 'at:a',
        redisEvent: 'expired',
        observedAt: 0,
        lifetimeMs: 60_000,
        expiryLagMs: 10,
      },
      {
        type: 'expired',
        key: 'at:b',
        redisEvent: 'expired',
        observedAt: 1,
        lifetimeMs: 60_001,
        expiryLagMs: 11,
        backlog: true,
      },
      {
        type: 'expired',
        key: 'at:c',
        redisEvent: 'expired',
        observedAt: 2,
        lifetimeMs: 60_002,
        expiryLagMs: 12,
      },
    ],
  },
  {
    name: 'del and evicted during our own SCAN: not backlog (only expirations are)',
    before: {
      'at:a': { due: NOW - 10_000, written: NOW - 60_000 },
      'at:b': { due: null, written: NOW - 60_000 },
    },
    ctx: { ownScan: { start: NOW - 100, end: undefined } },
    batches: one(['del', 'at:a'], ['evicted', 'at:b']),
    events: [
      { type: 'deleted', key: 'at:a', redisEvent: 'del', observedAt: 0, lifetimeMs: 60_000 },
      { type: 'evicted', key: 'at:b', redisEvent: 'evicted', observedAt: 1, lifetimeMs: 60_001 },
    ],
  },
  {
    name: 'a del of a long-past-due token does not make the expirations of its batch a flush',
    before: {
      'at:a': { due: NOW - 10_000, written: NOW - 60_000 },
      'at:b': { due: NOW - 100, written: NOW - 60_000 },
    },
    batches: one(['del', 'at:a'], ['expired', 'at:b']),
    events: [
      { type: 'deleted', key: 'at:a', redisEvent: 'del', observedAt: 0, lifetimeMs: 60_000 },
      {
        type: 'expired',
        key: 'at:b',
        redisEvent: 'expired',
        observedAt: 1,
        lifetimeMs: 60_001,
        expiryLagMs: 101,
      },
    ],
  },
  {
    name: 'expirations of tokens on another node, without TTL or unknown do not count towards a flush',
    before: {
      'at:a': { due: NOW - 10_000, written: NOW - 60_000, node: 1 },
      'at:b': { due: null, written: NOW - 60_000 },
      'at:c': { due: NOW - 100, written: NOW - 60_000 },
    },
    batches: one(
      ['expired', 'at:a'],
      ['expired', 'at:b'],
      ['expired', 'at:c'],
      ['expired', 'at:x'],
    ),
    events: [
      { type: 'expired', key: 'at:b', redisEvent: 'expired', observedAt: 1, lifetimeMs: 60_001 },
      {
        type: 'expired',
        key: 'at:c',
        redisEvent: 'expired',
        observedAt: 2,
        lifetimeMs: 60_002,
        expiryLagMs: 102,
      },
      { type: 'expired', key: 'at:x', redisEvent: 'expired', observedAt: 3 },
    ],
  },
  {
    name: 'a token of unknown due among the expirations counts for neither side of a flush',
    before: {
      'at:a': { due: Number.NaN, written: NOW - 60_000 },
      'at:b': { due: NOW - 10_000, written: NOW - 60_000 },
      'at:c': { due: NOW - 100, written: NOW - 60_000 },
    },
    batches: one(['expired', 'at:a'], ['expired', 'at:b'], ['expired', 'at:c']),
    events: [
      {
        type: 'expired',
        key: 'at:a',
        redisEvent: 'expired',
        observedAt: 0,
        lifetimeMs: 60_000,
        backlog: true,
      },
      {
        type: 'expired',
        key: 'at:b',
        redisEvent: 'expired',
        observedAt: 1,
        lifetimeMs: 60_001,
        expiryLagMs: 10_001,
        backlog: true,
      },
      {
        type: 'expired',
        key: 'at:c',
        redisEvent: 'expired',
        observedAt: 2,
        lifetimeMs: 60_002,
        expiryLagMs: 102,
        backlog: true,
      },
    ],
  },
  {
    name: 'a lazy-expiry flush judged on our clock when the Redis clock is 5 s ahead',
    before: {
      'at:a': { due: NOW + 5000 - 10_000, written: NOW - 60_000 },
      'at:b': { due: NOW + 5000 - 100, written: NOW - 60_000 },
    },
    ctx: { offsetMs: 5000 },
    batches: one(['expired', 'at:a'], ['expired', 'at:b']),
    events: [
      {
        type: 'expired',
        key: 'at:a',
        redisEvent: 'expired',
        observedAt: 0,
        lifetimeMs: 60_000,
        expiryLagMs: 10_000,
        backlog: true,
      },
      {
        type: 'expired',
        key: 'at:b',
        redisEvent: 'expired',
        observedAt: 1,
        lifetimeMs: 60_001,
        expiryLagMs: 101,
        backlog: true,
      },
    ],
  },
  {
    name: 'expired in a lazy-expiry flush (as many late as on time): all backlog',
    before: {
      'at:a': { due: NOW - 10_000, written: NOW - 60_000 },
      'at:b': { due: NOW - 100, written: NOW - 60_000 },
    },
    batches: one(['expired', 'at:a'], ['expired', 'at:b']),
    events: [
      {
        type: 'expired',
        key: 'at:a',
        redisEvent: 'expired',
        observedAt: 0,
        lifetimeMs: 60_000,
        expiryLagMs: 10_000,
        backlog: true,
      },
      {
        type: 'expired',
        key: 'at:b',
        redisEvent: 'expired',
        observedAt: 1,
        lifetimeMs: 60_001,
        expiryLagMs: 101,
        backlog: true,
      },
    ],
  },
  {
    name: 'evicted (maxmemory): evicted with its lifetime',
    before: { 'at:a': { due: null, written: NOW - 3000 } },
    batches: one(['evicted', 'at:a']),
    events: [
      { type: 'evicted', key: 'at:a', redisEvent: 'evicted', observedAt: 0, lifetimeMs: 3000 },
    ],
    after: {},
  },
  // --- MULTI / EXEC orderings ---------------------------------------------------------------
  {
    name: 'MULTI SET; EXPIRE; PERSIST (set, expire, persist): written with TTL unknown, then persisted',
    batches: one(['set', 'at:m'], ['expire', 'at:m'], ['persist', 'at:m']),
    pexpiretime: { 'at:m': -1 },
    events: [
      {
        type: 'written',
        key: 'at:m',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
      {
        type: 'persisted',
        key: 'at:m',
        redisEvent: 'persist',
        observedAt: 2,
        dueAt: null,
        ttlMs: null,
      },
    ],
    after: { 'at:m': { due: null, written: NOW } },
  },
  {
    name: 'MULTI SET KEEPTTL; PERSIST on a live token (set, persist): rewrite with TTL unknown, persisted',
    before: LIVE,
    batches: one(['set', 'at:a'], ['persist', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
        rewrite: true,
      },
      {
        type: 'persisted',
        key: 'at:a',
        redisEvent: 'persist',
        observedAt: 1,
        dueAt: null,
        ttlMs: null,
      },
    ],
  },
  {
    name: 'MULTI SET; SET of one key (set, set): two writes, only the last one looked up',
    batches: one(['set', 'at:a'], ['set', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 1,
        dueAt: null,
        ttlMs: null,
        rewrite: true,
      },
    ],
  },
  {
    name: 'MULTI SET EX; DEL (set, expire, del): written with TTL unknown, then deleted',
    batches: one(['set', 'at:m'], ['expire', 'at:m'], ['del', 'at:m']),
    pexpiretime: {},
    events: [
      {
        type: 'written',
        key: 'at:m',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
      { type: 'deleted', key: 'at:m', redisEvent: 'del', observedAt: 2, lifetimeMs: 2 },
    ],
    after: {},
  },
  {
    name: 'MULTI SET a; SET b EX (set, set, expire): two written, the TTL on b only',
    batches: one(['set', 'at:a'], ['set', 'at:b'], ['expire', 'at:b']),
    pexpiretime: { 'at:a': -1, 'at:b': D },
    events: [
      { type: 'written', key: 'at:a', redisEvent: 'set', observedAt: 0, dueAt: null, ttlMs: null },
      { type: 'written', key: 'at:b', redisEvent: 'set', observedAt: 1, dueAt: D, ttlMs: 99_999 },
    ],
  },
  {
    name: 'MULTI SET a; EXPIRE b; EXPIRE a (no pairing across another key): a ttl_changed after its write',
    batches: one(['set', 'at:a'], ['expire', 'at:b'], ['expire', 'at:a']),
    pexpiretime: { 'at:a': D, 'at:b': NOW + 7000 },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
      {
        type: 'ttl_changed',
        key: 'at:b',
        redisEvent: 'expire',
        observedAt: 1,
        dueAt: NOW + 7000,
        ttlMs: 6999,
      },
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 2,
        dueAt: D,
        ttlMs: 99_998,
      },
    ],
    after: { 'at:a': { due: D, written: NOW }, 'at:b': { due: NOW + 7000, written: 0 } },
  },
  {
    name: 'MULTI EXPIRE; SET (expire, set): ttl_changed with TTL unknown, then a rewrite',
    before: LIVE,
    batches: one(['expire', 'at:a'], ['set', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 1,
        dueAt: null,
        ttlMs: null,
        rewrite: true,
      },
    ],
  },
  {
    name: 'MULTI DEL; SET (del, set): deleted, then a new token (not a rewrite)',
    before: LIVE,
    batches: one(['del', 'at:a'], ['set', 'at:a']),
    pexpiretime: { 'at:a': -1 },
    events: [
      { type: 'deleted', key: 'at:a', redisEvent: 'del', observedAt: 0, lifetimeMs: 5000 },
      { type: 'written', key: 'at:a', redisEvent: 'set', observedAt: 1, dueAt: null, ttlMs: null },
    ],
    after: { 'at:a': { due: null, written: NOW + 1 } },
  },
  // --- pairs split across batches -----------------------------------------------------------
  {
    name: 'SET EX split (set ends a batch, its expire opens the next): one written with the TTL',
    batches: [[['set', 'at:a']], [['expire', 'at:a']]],
    pexpiretime: { 'at:a': D },
    events: [
      { type: 'written', key: 'at:a', redisEvent: 'set', observedAt: 0, dueAt: D, ttlMs: 100_000 },
    ],
    after: { 'at:a': { due: D, written: NOW } },
  },
  {
    name: 'HSET + EXPIRE split on a new hash: one written with the TTL',
    batches: [[['hset', 'sess:h']], [['expire', 'sess:h']]],
    pexpiretime: { 'sess:h': D },
    events: [
      {
        type: 'written',
        key: 'sess:h',
        redisEvent: 'hset',
        observedAt: 0,
        dueAt: D,
        ttlMs: 100_000,
      },
    ],
  },
  {
    name: "SET then a DEL of the key already pending: the look-up is not the SET's (TTL unknown)",
    batches: [[['set', 'at:a']], [['del', 'at:a']]],
    pexpiretime: { 'at:a': D },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
      { type: 'deleted', key: 'at:a', redisEvent: 'del', observedAt: 1, lifetimeMs: 1 },
    ],
    after: {},
  },
  {
    name: "SET, then SET b; EXPIRE a pending (not the SET's own expire): TTL unknown, then ttl_changed",
    batches: [
      [['set', 'at:a']],
      [
        ['set', 'at:b'],
        ['expire', 'at:a'],
      ],
    ],
    pexpiretime: { 'at:a': D, 'at:b': -1 },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
      { type: 'written', key: 'at:b', redisEvent: 'set', observedAt: 1, dueAt: null, ttlMs: null },
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 2,
        dueAt: D,
        ttlMs: 99_998,
      },
    ],
  },
  {
    name: 'SET a; SET b split, an EXPIRE a opens the next batch (a is not the batch tail): TTL unknown',
    batches: [
      [
        ['set', 'at:a'],
        ['set', 'at:b'],
      ],
      [['expire', 'at:a']],
    ],
    pexpiretime: { 'at:a': D, 'at:b': -1 },
    events: [
      {
        type: 'written',
        key: 'at:a',
        redisEvent: 'set',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
      { type: 'written', key: 'at:b', redisEvent: 'set', observedAt: 1, dueAt: null, ttlMs: null },
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 2,
        dueAt: D,
        ttlMs: 99_998,
      },
    ],
  },
  {
    name: 'EXPIRE, then another EXPIRE of the key opening the next batch: the first TTL unknown',
    before: LIVE,
    batches: [[['expire', 'at:a']], [['expire', 'at:a']]],
    pexpiretime: { 'at:a': NOW + 9000 },
    events: [
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 0,
        dueAt: 'unknown',
        ttlMs: 'unknown',
      },
      {
        type: 'ttl_changed',
        key: 'at:a',
        redisEvent: 'expire',
        observedAt: 1,
        dueAt: NOW + 9000,
        ttlMs: 8999,
      },
    ],
  },
  {
    name: 'SET, then a non-changing event (hdel) of the key pending: the look-up stands',
    batches: [[['set', 'at:a']], [['hdel', 'at:a']]],
    pexpiretime: { 'at:a': D },
    events: [
      { type: 'written', key: 'at:a', redisEvent: 'set', observedAt: 0, dueAt: D, ttlMs: 100_000 },
    ],
  },
  // --- what is not a token ------------------------------------------------------------------
  {
    name: 'keys matching no rule and keys over maxKeyBytes: counted, no event',
    batches: one(
      ['set', 'other'],
      ['set', `at:${'x'.repeat(80)}`],
      ['del', 'other'],
      ['new', 'at:a'],
    ),
    events: [],
    unmatched: 3,
  },
];

describe('token translation: one case per Redis behaviour', () => {
  for (const c of cases) {
    it(c.name, () => {
      const out = run(c);
      expect(out.events).toEqual(c.events);
      if (c.after) {
        const after = Object.fromEntries(
          Object.entries(c.after).map(([k, e]) => [k, { ...e, node: e.node ?? 0 }]),
        );
        expect(out.inventory).toEqual(after);
      }
      if (c.unmatched !== undefined) expect(out.unmatched).toBe(c.unmatched);
    });
  }
});

describe('token translation: the event itself', () => {
  it('carries kind, fingerprint, key attributes, node label and db', () => {
    const out = run({
      batches: one(['set', 'at:a']),
      pexpiretime: { 'at:a': -1 },
      ctx: { label: 'cache-1:6380', db: 3 },
    });
    const ev = out.raw[0];
    expect(ev?.kind).toBe('access_token');
    expect(ev?.fingerprint).toMatch(/^hmac-sha256:k1:[0-9a-f]{64}$/);
    expect(ev?.keyAttrs).toEqual({ token: ev?.fingerprint });
    expect(ev?.node).toBe('cache-1:6380');
    expect(ev?.db).toBe(3);
    expect(JSON.stringify(ev)).not.toContain('at:a');
  });

  it('records the TTL on our clock when the Redis clock is ahead', () => {
    const out = run({
      batches: one(['set', 'at:a'], ['expire', 'at:a']),
      pexpiretime: { 'at:a': D + 5000 },
      ctx: { offsetMs: 5000 },
    });
    expect(out.events).toEqual([
      { type: 'written', key: 'at:a', redisEvent: 'set', observedAt: 0, dueAt: D, ttlMs: 100_000 },
    ]);
    expect(out.inventory['at:a']?.due).toBe(D + 5000);
  });

  it('never reports a negative TTL for a key already past due', () => {
    const out = run({
      batches: one(['set', 'at:a'], ['expire', 'at:a']),
      pexpiretime: { 'at:a': NOW - 50 },
    });
    expect(out.events[0]).toMatchObject({ dueAt: NOW - 50, ttlMs: 0 });
  });
});
