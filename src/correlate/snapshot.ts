import { TOKEN_EVENT_TYPES } from '../domain/token-event.js';
import type { Finding } from '../domain/finding.js';
import type { TokenJoins } from './join-keys.js';
import type { ChurnKindSnapshot } from './rules/churn-spike.js';
import { arr, bool, int, invalid, num, obj, oneOf, optNum, optStr, str } from './snapshot-read.js';
import { NO_OPEN } from './token-store.js';
import type { OpenFindings, TokenFindingRule, TokenRecord } from './token-store.js';

/** Version of the snapshot's shape; restore refuses any other. */
export const SNAPSHOT_VERSION = 1;

/** A token record as plain data (`dueAt` null = no TTL, absent = unknown). */
export interface TokenRecordSnapshot {
  id: string;
  kind: string;
  fingerprint: string;
  joins: {
    tokenIds: string[];
    sessionId?: string | undefined;
    subject?: string | undefined;
    clientId?: string | undefined;
    familyId?: string | undefined;
  };
  firstSeenAt: number;
  writtenAt: number;
  writeSeen: boolean;
  dueAt?: number | null;
  seq?: number | undefined;
  endedAt?: number | undefined;
  endType?: string | undefined;
  endSeq?: number | undefined;
  open: Partial<Record<TokenFindingRule, string>>;
}

/**
 * Everything the correlator must not forget across a restart, as plain JSON-safe data: the
 * open findings, the tokens they are tied to, the obligations in flight (revocations, reuse
 * containments, rotations), rotation families, the revocations remembered for
 * `write_after_revocation`, pending attributions, eviction bursts and the churn baselines.
 * Not included: the live view of ordinary tokens (the start-up baseline SCAN re-seeds it) and
 * the provider events already seen (providers de-duplicate before the correlator; replay of
 * the ledger after the snapshot refills it).
 */
export interface CorrelatorSnapshot {
  version: typeof SNAPSHOT_VERSION;
  takenAt: number;
  findings: Finding[];
  tokens: TokenRecordSnapshot[];
  ended: TokenRecordSnapshot[];
  obligations: unknown[];
  families: [string, string[]][];
  revoked: { tokenIds: unknown[]; sessions: unknown[]; subjects: unknown[] };
  attribution: { issuances: unknown[]; pending: unknown[] };
  evictions: unknown[];
  churn: ChurnKindSnapshot[];
  /** Entries left out by `limits.maxSnapshotEntries`, per section. */
  truncated: Record<string, number>;
}

const TOKEN_RULES: readonly TokenFindingRule[] = [
  'token_without_expiry',
  'ttl_exceeds_policy',
  'unattributed_token',
  'write_after_revocation',
];

export function tokenToSnapshot(r: TokenRecord): TokenRecordSnapshot {
  const out: TokenRecordSnapshot = {
    id: r.id,
    kind: r.kind,
    fingerprint: r.fingerprint,
    joins: { ...r.joins, tokenIds: [...r.joins.tokenIds] },
    firstSeenAt: r.firstSeenAt,
    writtenAt: r.writtenAt,
    writeSeen: r.writeSeen,
    seq: r.seq,
    endedAt: r.endedAt,
    endType: r.endType,
    endSeq: r.endSeq,
    open: { ...r.open },
  };
  if (r.dueAt !== undefined) out.dueAt = r.dueAt;
  return out;
}

/** @throws TokenwatchError ERR_SNAPSHOT_INVALID */
export function tokenFromSnapshot(v: unknown, path: string): TokenRecord {
  const o = obj(v, path);
  const j = obj(o.joins, `${path}.joins`);
  const joins: TokenJoins = {
    tokenIds: arr(j.tokenIds, `${path}.joins.tokenIds`, 64).map((t, i) =>
      str(t, `${path}.joins.tokenIds[${i}]`),
    ),
    sessionId: optStr(j.sessionId, `${path}.joins.sessionId`),
    subject: optStr(j.subject, `${path}.joins.subject`),
    clientId: optStr(j.clientId, `${path}.joins.clientId`),
    familyId: optStr(j.familyId, `${path}.joins.familyId`),
  };
  const entries = Object.entries(obj(o.open, `${path}.open`));
  const open: OpenFindings = entries.length === 0 ? NO_OPEN : {};
  for (const [k, id] of entries) {
    open[oneOf(k, `${path}.open`, TOKEN_RULES)] = str(id, `${path}.open.${k}`, 1024);
  }
  const endType = optStr(o.endType, `${path}.endType`);
  return {
    id: str(o.id, `${path}.id`, 2048),
    kind: str(o.kind, `${path}.kind`),
    fingerprint: str(o.fingerprint, `${path}.fingerprint`),
    joins,
    firstSeenAt: num(o.firstSeenAt, `${path}.firstSeenAt`),
    writtenAt: num(o.writtenAt, `${path}.writtenAt`),
    writeSeen: bool(o.writeSeen, `${path}.writeSeen`),
    dueAt: o.dueAt === null ? null : optNum(o.dueAt, `${path}.dueAt`),
    seq: o.seq === undefined || o.seq === null ? undefined : int(o.seq, `${path}.seq`, 1),
    endedAt: optNum(o.endedAt, `${path}.endedAt`),
    endType:
      endType === undefined ? undefined : oneOf(endType, `${path}.endType`, TOKEN_EVENT_TYPES),
    endSeq:
      o.endSeq === undefined || o.endSeq === null ? undefined : int(o.endSeq, `${path}.endSeq`, 1),
    open,
  };
}

/** Checks the envelope; the sections are checked by the parts that restore them. */
export function snapshotEnvelope(raw: unknown): Record<string, unknown> {
  const o = obj(raw, 'snapshot');
  if (o.version !== SNAPSHOT_VERSION)
    invalid('version', `is ${String(o.version)}, this version restores ${SNAPSHOT_VERSION}`);
  num(o.takenAt, 'takenAt');
  return o;
}

/** The newest `max` of `items` (oldest first in, oldest first out); counts what was left out. */
export function newest<T>(
  items: readonly T[],
  max: number,
  section: string,
  truncated: Record<string, number>,
): T[] {
  if (items.length <= max) return [...items];
  truncated[section] = items.length - max;
  return items.slice(items.length - max);
}
