import type { AuditRecord } from '../audit/record.js';
import { parseFinding } from '../correlate/finding-book.js';
import type { Finding } from '../domain/finding.js';
import { PROVIDER_EVENT_TYPES } from '../domain/provider-event.js';
import type { ProviderEvent, ProviderName } from '../domain/provider-event.js';
import { TOKEN_EVENT_TYPES } from '../domain/token-event.js';
import type { TokenEvent } from '../domain/token-event.js';
import { isTokenwatchError } from '../errors.js';

/**
 * Domain events read back from committed ledger records, for replay after a restart: the
 * inverse of KeyspaceRecorder.token/gap (token.*), eventAuditInput (provider.*) and the
 * findings service (finding.*). The records are evidence covered by the hash chain and signed
 * checkpoints; their shape is still checked, and a record that does not decode is skipped and
 * counted rather than guessed at.
 */

type Attrs = Record<string, unknown>;

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const optStr = (v: unknown): string | undefined => (isStr(v) ? v : undefined);

/**
 * Token event types replayed. `present` (tokens found by a baseline SCAN) is tracked like
 * `appeared` by the correlator once the keyspace side records it.
 */
const TOKEN_TYPES: ReadonlySet<string> = new Set([...TOKEN_EVENT_TYPES, 'present']);
const PROVIDER_TYPES: ReadonlySet<string> = new Set(PROVIDER_EVENT_TYPES);

export type Decoded =
  | { type: 'token'; event: TokenEvent }
  | { type: 'provider'; event: ProviderEvent }
  | { type: 'skip' }
  | { type: 'bad' };

/** What one committed record means to the correlator. `defaultDb`: for reconciliation records. */
export function decodeRecord(r: AuditRecord, defaultDb: number): Decoded {
  if (r.type.startsWith('token.')) return tokenEvent(r, defaultDb);
  if (r.source === 'provider' && r.type.startsWith('provider.')) return providerEvent(r);
  return { type: 'skip' };
}

function tokenEvent(r: AuditRecord, defaultDb: number): Decoded {
  const type = r.type.slice('token.'.length);
  const a: Attrs = r.attrs;
  if (r.source !== 'redis' || !TOKEN_TYPES.has(type) || !isStr(r.kind) || !isStr(r.fingerprint))
    return { type: 'bad' };
  if (!isStr(a.node)) return { type: 'bad' };
  const keyAttrs: Record<string, string> = {};
  if (a.key !== undefined) {
    if (typeof a.key !== 'object' || a.key === null) return { type: 'bad' };
    for (const [k, v] of Object.entries(a.key as Attrs)) if (isStr(v)) keyAttrs[k] = v;
  }
  const ev: TokenEvent = {
    type: type as TokenEvent['type'],
    kind: r.kind,
    fingerprint: r.fingerprint,
    keyAttrs,
    node: a.node,
    db: isNum(a.db) ? a.db : defaultDb,
    observedAt: r.time,
    redisEvent: a.via === 'reconcile' ? 'reconcile' : (optStr(a.redisEvent) ?? type),
  };
  if (a.dueAt === null || isNum(a.dueAt)) ev.dueAt = a.dueAt;
  if (a.ttlMs === null || isNum(a.ttlMs)) ev.ttlMs = a.ttlMs;
  if (isNum(a.lifetimeMs)) ev.lifetimeMs = a.lifetimeMs;
  if (isNum(a.expiryLagMs)) ev.expiryLagMs = a.expiryLagMs;
  if (a.backlog === true) ev.backlog = true;
  if (a.renamedFrom === null) ev.renamedFrom = null;
  else if (typeof a.renamedFrom === 'object' && a.renamedFrom !== undefined) {
    const from = a.renamedFrom as Attrs;
    if (!isStr(from.kind) || !isStr(from.fingerprint)) return { type: 'bad' };
    ev.renamedFrom = { kind: from.kind, fingerprint: from.fingerprint };
  }
  return { type: 'token', event: ev };
}

function providerEvent(r: AuditRecord): Decoded {
  const type = r.type.slice('provider.'.length);
  // provider.rejected, provider.stream_verified, ...: deliveries, not events.
  if (!PROVIDER_TYPES.has(type)) return { type: 'skip' };
  const a: Attrs = r.attrs;
  if (!isStr(a.provider) || !isStr(a.eventId) || !isNum(a.occurredAt) || !Array.isArray(a.tokenIds))
    return { type: 'bad' };
  const ev: ProviderEvent = {
    provider: a.provider as ProviderName,
    id: a.eventId,
    type: type as ProviderEvent['type'],
    occurredAt: a.occurredAt,
    observedAt: r.time,
    tokenIds: a.tokenIds.filter(isStr),
    outcome: a.outcome === 'failure' || a.outcome === 'unknown' ? a.outcome : 'success',
    vendorType: optStr(a.vendorType) ?? type,
    attributes: {},
  };
  const subject = optStr(a.subject);
  if (subject !== undefined) ev.subject = subject;
  const clientId = optStr(a.clientId);
  if (clientId !== undefined) ev.clientId = clientId;
  const sessionId = optStr(a.sessionId);
  if (sessionId !== undefined) ev.sessionId = sessionId;
  if (typeof a.rotation === 'object' && a.rotation !== null) {
    const rot = a.rotation as Attrs;
    const ids = (v: unknown) => (Array.isArray(v) ? v.filter(isStr) : []);
    ev.rotation = { previous: ids(rot.previous), next: ids(rot.next) };
    const familyId = optStr(rot.familyId);
    if (familyId !== undefined) ev.rotation.familyId = familyId;
  }
  return { type: 'provider', event: ev };
}

/** The finding a `finding.<rule>` record states, or undefined when it does not decode. */
export function recordedFinding(r: AuditRecord): Finding | undefined {
  const a: Attrs = r.attrs;
  try {
    return parseFinding(
      {
        ...a,
        rule: r.type.slice('finding.'.length),
        at: r.time,
        kind: r.kind ?? undefined,
        fingerprint: r.fingerprint ?? undefined,
      },
      `record ${r.seq}`,
    );
  } catch (err) {
    if (isTokenwatchError(err)) return undefined;
    throw err;
  }
}
