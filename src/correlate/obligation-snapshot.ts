import { PROVIDER_EVENT_TYPES } from '../domain/provider-event.js';
import type { ProviderName } from '../domain/provider-event.js';
import type { ResolvedCorrelatorOptions } from './options.js';
import { MAX_WATCH_IDS } from './revocations.js';
import type { Obligation, ObligationKind } from './revocations.js';
import { arr, bool, int, num, obj, oneOf, optNum, optStr, str } from './snapshot-read.js';

const KINDS: readonly ObligationKind[] = ['revocation', 'refresh_reuse', 'rotation'];
const MAX_PENDING_TOKENS = 100_000;

/** An obligation as plain data: Maps and Sets become arrays. */
export function obligationToSnapshot(ob: Obligation): Record<string, unknown> {
  return {
    ...ob,
    ev: { ...ob.ev },
    pending: [...ob.pending].map(([id, i]) => [id, i.kind, i.fingerprint]),
    kinds: [...ob.kinds],
    evidence: ob.evidence.filter((s) => s !== undefined),
    watchIds: [...ob.watchIds],
  };
}

/** @throws TokenwatchError ERR_SNAPSHOT_INVALID */
export function obligationFromSnapshot(
  v: unknown,
  path: string,
  opts: ResolvedCorrelatorOptions,
): Obligation {
  const o = obj(v, path);
  const ev = obj(o.ev, `${path}.ev`);
  const pending = new Map<string, { kind: string; fingerprint: string }>();
  for (const [i, e] of arr(o.pending, `${path}.pending`, MAX_PENDING_TOKENS).entries()) {
    const t = arr(e, `${path}.pending[${i}]`, 3);
    pending.set(str(t[0], `${path}.pending[${i}][0]`, 2048), {
      kind: str(t[1], `${path}.pending[${i}][1]`),
      fingerprint: str(t[2], `${path}.pending[${i}][2]`),
    });
  }
  const kind = oneOf(o.kind, `${path}.kind`, KINDS);
  const provider = str(ev.provider, `${path}.ev.provider`) as ProviderName;
  const id = str(ev.id, `${path}.ev.id`, 1024);
  return {
    // Keys are derived, not read: a snapshot cannot file an obligation under another event.
    key: `${kind}:${provider}:${id}`,
    eventKey: `${provider}:${id}`,
    kind,
    ev: {
      provider,
      id,
      type: oneOf(ev.type, `${path}.ev.type`, PROVIDER_EVENT_TYPES),
      subject: optStr(ev.subject, `${path}.ev.subject`),
      sessionId: optStr(ev.sessionId, `${path}.ev.sessionId`),
    },
    revokedAt: num(o.revokedAt, `${path}.revokedAt`),
    deadline: num(o.deadline, `${path}.deadline`),
    slaSeconds: num(o.slaSeconds, `${path}.slaSeconds`),
    pending,
    matched: int(o.matched, `${path}.matched`),
    goneBeforeEvent: int(o.goneBeforeEvent, `${path}.goneBeforeEvent`),
    lastLeftAt: optNum(o.lastLeftAt, `${path}.lastLeftAt`),
    lost: int(o.lost, `${path}.lost`),
    kinds: new Set(
      arr(o.kinds, `${path}.kinds`, 1000).map((k, i) => str(k, `${path}.kinds[${i}]`)),
    ),
    deadlinePassed: bool(o.deadlinePassed, `${path}.deadlinePassed`),
    findingId: optStr(o.findingId, `${path}.findingId`),
    evidence: arr(o.evidence, `${path}.evidence`, opts.limits.maxEvidenceSeqs).map((s, i) =>
      int(s, `${path}.evidence[${i}]`, 1),
    ),
    watchIds: arr(o.watchIds, `${path}.watchIds`, MAX_WATCH_IDS).map((w, i) =>
      str(w, `${path}.watchIds[${i}]`),
    ),
    successorExpected: bool(o.successorExpected, `${path}.successorExpected`),
    successorSeen: bool(o.successorSeen, `${path}.successorSeen`),
  };
}
