import type { ProviderEvent, ProviderEventType } from '../domain/provider-event.js';
import {
  type AttributeValue,
  DEFAULT_MAX_DEPTH,
  type JsonRecord,
  type NormalizeContext,
  assertEventCount,
  assertMaxDepth,
  isRecord,
  malformed,
  numericDateToMs,
  optId,
  optNumber,
  optRecord,
  optString,
  requireEventId,
  toProviderEvent,
} from './payload-reader.js';

/**
 * Shared Signals (SSF 1.0, CAEP 1.0, RISC 1.0) SET payloads to {@link ProviderEvent}s. Call it
 * with the payload of a SET that {@link verifySet} accepted.
 */

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const OAUTH = 'https://schemas.openid.net/secevent/oauth/event-type/';
/** SSF stream verification; `sse` is the pre-SSF (draft) namespace. */
const VERIFICATION = new Set([
  'https://schemas.openid.net/secevent/ssf/event-type/verification',
  'https://schemas.openid.net/secevent/sse/event-type/verification',
]);

const TYPE_MAP: ReadonlyMap<string, ProviderEventType> = new Map([
  [`${CAEP}session-revoked`, 'session_revoked'],
  [`${CAEP}session-established`, 'session_started'],
  [`${CAEP}credential-change`, 'credential_changed'],
  [`${CAEP}token-claims-change`, 'other'],
  [`${RISC}sessions-revoked`, 'session_revoked'],
  [`${RISC}account-disabled`, 'account_disabled'],
  [`${RISC}account-purged`, 'account_disabled'],
  [`${RISC}credential-compromise`, 'credential_changed'],
  [`${OAUTH}token-revoked`, 'token_revoked'],
]);

/**
 * Result of {@link normalizeSsf}: provider events, or, for an SSF stream verification event,
 * the `state` to compare with what the receiver requested (SSF 1.0 §8.1.4.2).
 */
export type SsfResult =
  { events: ProviderEvent[] } | { verification: { state: string | undefined } };

/**
 * Maps a verified SET payload to provider events. One SET may hold several events: their ids
 * are `${jti}` for one and `${jti}#${i}` for several (in the payload's member order).
 *
 * Subject comes from the event's own `subject` member (RISC/CAEP legacy), else the SET's
 * `sub_id` (SSF, RFC 9493), else `sub`. `jwt_id` subjects fill `tokenIds`, session subjects and
 * `sid` fill `sessionId`: both fingerprinted.
 *
 * @throws TokenwatchError ERR_WEBHOOK_MALFORMED when `jti`, `events` or every timestamp
 *   (`event_timestamp`, `toe`, `iat`) is missing.
 */
export function normalizeSsf(payload: unknown, ctx: NormalizeContext): SsfResult {
  if (!isRecord(payload)) throw malformed('SET payload: expected an object');
  assertMaxDepth(payload, DEFAULT_MAX_DEPTH);
  const jti = requireEventId(payload.jti, 'SET.jti');
  const events = payload.events;
  if (!isRecord(events)) throw malformed('SET.events: expected an object', { path: 'events' });
  const entries = Object.entries(events);
  if (entries.length === 0) throw malformed('SET.events: no event', { path: 'events' });
  assertEventCount(entries.length, ctx.maxEvents);

  for (const [uri, body] of entries) {
    if (VERIFICATION.has(uri)) return { verification: { state: optString(body, 'state') } };
  }

  const setSubject = readSubject(payload.sub_id) ?? plainSubject(optString(payload, 'sub'));
  const setSid = optString(payload, 'sid');
  const toe = optNumber(payload, 'toe');
  const iat = optNumber(payload, 'iat');

  return {
    events: entries.map(([uri, body], i) => {
      if (!isRecord(body)) throw malformed(`SET.events["${uri}"]: expected an object`);
      const subject = readSubject(body.subject) ?? setSubject ?? {};
      const when = optNumber(body, 'event_timestamp') ?? toe ?? iat;
      if (when === undefined) {
        throw malformed('SET: no event_timestamp, toe or iat', { path: 'iat' });
      }
      return toProviderEvent(
        'ssf',
        {
          id: entries.length === 1 ? jti : `${jti}#${i}`,
          type: TYPE_MAP.get(uri) ?? 'other',
          occurredAt: numericDateToMs(when),
          outcome: 'success',
          vendorType: uri,
          subject: subject.subject,
          clientId: subject.clientId,
          sessionId: subject.sessionId ?? setSid ?? optString(body, 'sid'),
          tokenIds: subject.tokenIds,
          attributes: {
            issuer: optString(payload, 'iss'),
            txn: optId(payload, 'txn'),
            subjectFormat: subject.format,
            subjectIssuer: subject.issuer,
            tenant: subject.tenant,
            ...eventAttributes(body),
          },
        },
        ctx,
      );
    }),
  };
}

interface Subject {
  format?: string;
  subject?: string;
  issuer?: string;
  clientId?: string;
  /** Raw: fingerprinted by toProviderEvent. */
  sessionId?: string;
  /** Raw: fingerprinted by toProviderEvent. */
  tokenIds?: string[];
  tenant?: string;
}

function plainSubject(sub: string | undefined): Subject | undefined {
  return sub ? { format: 'sub', subject: sub } : undefined;
}

/** RFC 9493 subject identifier or SSF complex subject. */
function readSubject(v: unknown): Subject | undefined {
  if (!isRecord(v)) return undefined;
  const format = optString(v, 'format');
  // SSF 1.0 §3.2: complex subjects name their parts (user, session, application, tenant…);
  // "format":"complex" was added in a later draft, so its absence is tolerated.
  if (format === 'complex' || (format === undefined && hasComplexMember(v))) {
    const user = readSimple(v.user);
    const session = readSimple(v.session);
    const app = readSimple(v.application);
    const tenant = readSimple(v.tenant);
    return {
      format: 'complex',
      subject: user?.subject,
      issuer: user?.issuer,
      sessionId: session?.sessionId ?? session?.subject,
      clientId: app?.subject,
      tokenIds: [...(user?.tokenIds ?? []), ...(session?.tokenIds ?? [])],
      tenant: tenant?.subject,
    };
  }
  return readSimple(v);
}

function hasComplexMember(v: JsonRecord): boolean {
  return ['user', 'session', 'device', 'application', 'tenant', 'org_unit', 'group'].some((k) =>
    isRecord(v[k]),
  );
}

function readSimple(v: unknown): Subject | undefined {
  if (!isRecord(v)) return undefined;
  const format = optString(v, 'format');
  switch (format) {
    case 'opaque':
      return { format, subject: optString(v, 'id') };
    case 'email':
      return { format, subject: optString(v, 'email') };
    case 'phone_number':
      return { format, subject: optString(v, 'phone_number') };
    case 'iss_sub':
      return { format, subject: optString(v, 'sub'), issuer: optString(v, 'iss') };
    case 'account':
    case 'uri':
      return { format, subject: optString(v, 'uri') };
    case 'did':
      return { format, subject: optString(v, 'url') };
    case 'jwt_id':
      // RFC 9493 §3.2.6: identifies a JWT by iss + jti; the jti joins Redis tokens.
      return { format, issuer: optString(v, 'iss'), tokenIds: listOf(optString(v, 'jti')) };
    case 'saml_assertion_id':
      return {
        format,
        issuer: optString(v, 'issuer'),
        tokenIds: listOf(optString(v, 'assertion_id')),
      };
    case 'session_id':
    case 'iss_sid':
      return {
        format,
        issuer: optString(v, 'iss'),
        sessionId: optString(v, 'sid') ?? optString(v, 'id'),
      };
    case 'aliases': {
      const ids = Array.isArray(v.identifiers) ? v.identifiers : [];
      for (const id of ids.slice(0, 16)) {
        const s = readSimple(id);
        if (s?.subject || s?.sessionId || s?.tokenIds?.length) return s;
      }
      return { format };
    }
    default:
      // Unknown format: keep what is recognisable without guessing.
      return {
        format: format ?? 'unknown',
        subject: optString(v, 'sub') ?? optString(v, 'id'),
        sessionId: optString(v, 'sid'),
      };
  }
}

function listOf(v: string | undefined): string[] {
  return v ? [v] : [];
}

/** CAEP §2 common claims plus the event-specific, non-secret ones. */
function eventAttributes(body: JsonRecord): Record<string, AttributeValue | undefined> {
  const claims = optRecord(body, 'claims');
  return {
    initiatingEntity: optString(body, 'initiating_entity'),
    reasonAdmin: localized(body.reason_admin),
    reason: optString(body, 'reason'),
    credentialType: optString(body, 'credential_type'),
    changeType: optString(body, 'change_type'),
    // token-claims-change: which claims changed, not their (possibly personal) values.
    changedClaims: claims ? Object.keys(claims).slice(0, 32).join(',') : undefined,
    currentLevel: optString(body, 'current_level'),
    currentStatus: optString(body, 'current_status'),
  };
}

/** CAEP `reason_admin` is a map of BCP 47 language tag to text; older drafts used a string. */
function localized(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (!isRecord(v)) return undefined;
  const en = v.en;
  if (typeof en === 'string') return en;
  return Object.values(v).find((x): x is string => typeof x === 'string');
}
