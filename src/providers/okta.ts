import type {
  ProviderEvent,
  ProviderEventType,
  ProviderOutcome,
} from '../domain/provider-event.js';
import {
  DEFAULT_MAX_DEPTH,
  type NormalizeContext,
  assertEventCount,
  assertMaxDepth,
  isRecord,
  malformed,
  optRecord,
  optString,
  requireEventId,
  requireIsoTime,
  requireString,
  toProviderEvent,
} from './payload-reader.js';

/**
 * Okta: Event Hook deliveries and System Log API pages to {@link ProviderEvent}s.
 *
 * Both carry the same LogEvent objects (https://developer.okta.com/docs/reference/api/system-log/).
 * Token grants and revocations are probably not event-hook eligible, so the poller feeds the
 * System Log API's bare arrays through the same function.
 */

const EVENT_HOOK_TYPE = 'com.okta.event_hook';
const TOKEN_TARGET_TYPES = new Set(['access_token', 'refresh_token', 'id_token']);

/**
 * Token event types to pull from the System Log API (`filter=eventType eq "…"`), because they are
 * probably not event-hook eligible (providers.md, Okta).
 */
export const OKTA_TOKEN_EVENT_TYPES: readonly string[] = [
  'app.oauth2.as.token.grant.access_token',
  'app.oauth2.as.token.grant.refresh_token',
  'app.oauth2.as.token.grant.id_token',
  'app.oauth2.as.token.revoke',
  'app.oauth2.as.token.detect_reuse',
  'app.oauth2.token.grant.access_token',
  'app.oauth2.token.grant.refresh_token',
  'app.oauth2.token.grant.id_token',
  'app.oauth2.token.revoke',
  'app.oauth2.token.detect_reuse',
];

/**
 * Normalizes an Okta Event Hook body (`{eventType:"com.okta.event_hook", data:{events:[...]}}`)
 * or a System Log API page (a bare array of LogEvents).
 *
 * @throws TokenwatchError ERR_WEBHOOK_MALFORMED when the envelope or a LogEvent's uuid,
 *   eventType or published is not Okta's shape; ERR_WEBHOOK_TOO_LARGE beyond `ctx.maxEvents`.
 */
export function normalizeOkta(payload: unknown, ctx: NormalizeContext): ProviderEvent[] {
  const { events, path } = unwrap(payload);
  assertEventCount(events.length, ctx.maxEvents);
  assertMaxDepth(payload, DEFAULT_MAX_DEPTH);
  return events.map((e, i) => normalizeLogEvent(e, `${path}[${i}]`, ctx));
}

function unwrap(payload: unknown): { events: unknown[]; path: string } {
  if (Array.isArray(payload)) return { events: payload, path: '' };
  if (!isRecord(payload)) {
    throw malformed('Okta payload: expected an Event Hook object or a System Log array');
  }
  if (payload.eventType !== EVENT_HOOK_TYPE) {
    throw malformed(`Okta payload: eventType is not "${EVENT_HOOK_TYPE}"`, { path: 'eventType' });
  }
  const events = optRecord(payload, 'data')?.events;
  if (!Array.isArray(events)) {
    throw malformed('Okta payload: data.events is not an array', { path: 'data.events' });
  }
  return { events, path: 'data.events' };
}

function normalizeLogEvent(e: unknown, path: string, ctx: NormalizeContext): ProviderEvent {
  if (!isRecord(e)) throw malformed(`${path}: expected a LogEvent object`, { path });
  const id = requireEventId(e.uuid, `${path}.uuid`);
  const eventType = requireString(e.eventType, `${path}.eventType`);
  const occurredAt = requireIsoTime(e.published, `${path}.published`);

  const debugData = optRecord(optRecord(e, 'debugContext'), 'debugData');
  const grantType = optString(debugData, 'grantType');
  const type = mapType(eventType, grantType);

  const actor = optRecord(e, 'actor');
  const actorType = optString(actor, 'type');
  const actorUser = actorType === 'User' ? optString(actor, 'id') : undefined;
  const targets = Array.isArray(e.target) ? e.target.filter(isRecord) : [];
  const targetUser = targets.find((t) => t.type === 'User');
  const tokenTargets = targets.filter(
    (t) => typeof t.type === 'string' && TOKEN_TARGET_TYPES.has(t.type.toLowerCase()),
  );

  const tokenIds: (string | undefined)[] = [];
  let tokenSubject: string | undefined;
  for (const t of tokenTargets) {
    // A token target's id is the token's jti (e.g. "AT.…") and detailEntry.hash its hash:
    // both can join Redis entries, both are secrets, both are fingerprinted.
    const detail = optRecord(t, 'detailEntry');
    tokenIds.push(optString(t, 'id'), optString(detail, 'hash'));
    tokenSubject ??= optString(detail, 'subject');
  }

  // The user acted upon (an admin clearing sessions, suspending, resetting factors) is the
  // target; self-service events (login, logout) have no user target and name the actor.
  const isToken = type.startsWith('token_') || type === 'refresh_reuse_detected';
  const subject = isToken
    ? (tokenSubject ?? actorUser ?? optString(targetUser, 'id'))
    : (optString(targetUser, 'id') ?? actorUser);

  const clientTarget = targets.find(
    (t) => typeof t.type === 'string' && /ClientApp|AppInstance/.test(t.type),
  );
  const clientId =
    actorType && /App|Client/.test(actorType)
      ? optString(actor, 'id')
      : optString(clientTarget, 'id');

  const externalSessionId = optString(optRecord(e, 'authenticationContext'), 'externalSessionId');
  const client = optRecord(e, 'client');
  const outcome = optRecord(e, 'outcome');

  return toProviderEvent(
    'okta',
    {
      id,
      type,
      occurredAt,
      outcome: mapOutcome(optString(outcome, 'result')),
      vendorType: eventType,
      subject,
      clientId,
      // Okta writes "unknown" when there is no session; fingerprinting it would join strangers.
      sessionId: externalSessionId === 'unknown' ? undefined : externalSessionId,
      tokenIds,
      attributes: {
        ip: optString(client, 'ipAddress'),
        userAgent: optString(optRecord(client, 'userAgent'), 'rawUserAgent'),
        reason: optString(outcome, 'reason'),
        severity: optString(e, 'severity'),
        grantType,
        scopes: optString(debugData, 'grantedScopes'),
        actorId: actorUser !== subject ? optString(actor, 'id') : undefined,
        actorType,
      },
    },
    ctx,
  );
}

function mapType(t: string, grantType: string | undefined): ProviderEventType {
  // Custom authorization servers log `app.oauth2.as.token.*`, the org server `app.oauth2.token.*`.
  const token = /^app\.oauth2\.(?:as\.)?token\.(grant|revoke|detect_reuse)(?:\.|$)/.exec(t);
  if (token) {
    if (token[1] === 'revoke') return 'token_revoked';
    if (token[1] === 'detect_reuse') return 'refresh_reuse_detected';
    return grantType === 'refresh_token' ? 'token_refreshed' : 'token_issued';
  }
  switch (t) {
    case 'user.session.start':
      return 'session_started';
    case 'user.session.end':
    case 'user.session.expire':
      return 'session_ended';
    case 'user.session.clear':
      return 'session_revoked';
    case 'user.account.lock':
    case 'user.lifecycle.deactivate':
    case 'user.lifecycle.suspend':
      return 'account_disabled';
    case 'user.account.update_password':
    case 'user.account.reset_password':
      return 'credential_changed';
  }
  if (/^user\.account\.lock\./.test(t) || /^user\.lifecycle\.delete\./.test(t)) {
    return 'account_disabled';
  }
  if (/^user\.mfa\.factor\.[a-z_.]*reset/.test(t)) return 'credential_changed';
  return 'other';
}

function mapOutcome(result: string | undefined): ProviderOutcome {
  switch (result) {
    case 'SUCCESS':
    case 'ALLOW':
      return 'success';
    case 'FAILURE':
    case 'DENY':
      return 'failure';
    default:
      return 'unknown';
  }
}
