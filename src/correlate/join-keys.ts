import { FINGERPRINT_RE } from '../domain/fingerprint.js';
import type { TokenEvent } from '../domain/token-event.js';
import type { ResolvedKindRule } from './options.js';

/** The provider join keys a Redis token carries, derived once from its keyAttrs. */
export interface TokenJoins {
  tokenIds: readonly string[];
  sessionId: string | undefined;
  subject: string | undefined;
  clientId: string | undefined;
  familyId: string | undefined;
}

const nonEmpty = (v: string | undefined): string | undefined =>
  v === undefined || v === '' ? undefined : v;

/**
 * Join keys of a token under its kind's rule. The fingerprint is a token id unless the kind says
 * otherwise; without explicit `tokenId` joins, every other keyAttrs value shaped like a
 * fingerprint (jti, token, ...) counts too, since secret placeholders are only ever fingerprints.
 */
export function tokenJoins(
  ev: Pick<TokenEvent, 'fingerprint' | 'keyAttrs'>,
  rule: ResolvedKindRule | undefined,
): TokenJoins {
  const attrs = ev.keyAttrs;
  const j = rule?.joins;
  const pick = (name: string | undefined) =>
    name === undefined ? undefined : nonEmpty(attrs[name]);
  // A few ids at most, distinct, in first-seen order: an array beats a Set here, and a value
  // already taken (the fingerprint itself, under `token`) needs no regex test. Once per write.
  // A literal, not a push into []: that reserves 16 slots for what is nearly always one id.
  const ids: string[] = (rule?.fingerprintIsTokenId ?? true) ? [ev.fingerprint] : [];
  if (j?.tokenId !== undefined) {
    for (const name of j.tokenId) {
      const v = pick(name);
      if (v !== undefined && !ids.includes(v)) ids.push(v);
    }
  } else {
    for (const name of Object.keys(attrs)) {
      if (name === j?.sessionId || name === j?.subject || name === j?.clientId) continue;
      if (name === j?.familyId) continue;
      const v = attrs[name] as string;
      if (!ids.includes(v) && FINGERPRINT_RE.test(v)) ids.push(v);
    }
  }
  return {
    tokenIds: ids,
    sessionId: pick(j?.sessionId),
    subject: pick(j?.subject),
    clientId: pick(j?.clientId),
    familyId: pick(j?.familyId),
  };
}

/** Index key of a (subject, client) pair; tokens whose kind carries no client use ''. */
export function subjectClientKey(subject: string, clientId: string | undefined): string {
  return `${subject}\u0000${clientId ?? ''}`;
}

/** Identity of a Redis key as the correlator tracks it: tokenScope + its fingerprint. */
export function tokenIdentity(node: string, db: number, kind: string, fingerprint: string): string {
  return tokenScope(node, db, kind) + fingerprint;
}

/** What a token identity starts with: `node\0db\0kind\0` (its fingerprint follows). */
export function tokenScope(node: string, db: number, kind: string): string {
  return `${node}\u0000${db}\u0000${kind}\u0000`;
}
