import type {
  ProviderEvent,
  ProviderEventType,
  ProviderOutcome,
} from '../domain/provider-event.js';
import {
  DEFAULT_MAX_DEPTH,
  type JsonRecord,
  type NormalizeContext,
  type RawProviderEvent,
  assertEventCount,
  assertMaxDepth,
  canonicalJson,
  isRecord,
  malformed,
  optRecord,
  optString,
  requireEpochMs,
  requireEventId,
  toProviderEvent,
} from './payload-reader.js';

/**
 * Keycloak events to {@link ProviderEvent}s. Three shapes arrive:
 * - the plain event representation (`id`, `time`, `type`, `realmId`, `clientId`, `userId`,
 *   `sessionId`, `ipAddress`, `error`, `details{}`), alone or as the admin API's array
 *   (`GET /admin/realms/{realm}/events`); admin events (`operationType`, `resourceType`,
 *   `resourcePath`, `representation`, `authDetails{}`) from `/admin-events`;
 * - the p2-inc keycloak-events webhook ("unified" events): `uid`, `time`, `realmId`,
 *   `type` prefixed `access.` (user events) or `admin.` (`admin.<RESOURCE>-<OPERATION>`), and
 *   `authDetails{realmId, clientId, userId, ipAddress, username, sessionId}`
 *   (https://phasetwo.io/docs/audit-logs/).
 */

/** Largest admin `representation` string parsed to look for `enabled:false`. */
const MAX_REPRESENTATION_LENGTH = 64 * 1024;

/**
 * Normalizes one Keycloak event or an array of them (plain, admin or p2-inc webhook shape).
 *
 * Events without an `id` (Keycloak before 22, p2-inc user events) get `uid` when present, else a
 * deterministic HMAC fingerprint (`hmac-sha256:<keyId>:<hex>`) of the canonical event so
 * redeliveries deduplicate. Keyed: the event holds token and session ids, and an unkeyed hash
 * of low-entropy input can be confirmed by anyone who guesses it (issue #17, finding 7).
 *
 * @throws TokenwatchError ERR_WEBHOOK_MALFORMED when an event has no `time` or no type.
 */
export function normalizeKeycloak(payload: unknown, ctx: NormalizeContext): ProviderEvent[] {
  const events = Array.isArray(payload) ? payload : [payload];
  assertEventCount(events.length, ctx.maxEvents);
  assertMaxDepth(payload, DEFAULT_MAX_DEPTH);
  return events.map((e, i) => normalizeEvent(e, Array.isArray(payload) ? `[${i}]` : '', ctx));
}

function normalizeEvent(e: unknown, path: string, ctx: NormalizeContext): ProviderEvent {
  const where = `Keycloak event${path}`;
  if (!isRecord(e)) throw malformed(`${where}: expected an object`, { path });
  const occurredAt = requireEpochMs(e.time, `${where}.time`);
  const id =
    e.id !== undefined && e.id !== null
      ? requireEventId(e.id, `${where}.id`)
      : e.uid !== undefined && e.uid !== null
        ? requireEventId(e.uid, `${where}.uid`)
        : ctx.fingerprinter.of(canonicalJson(e));

  const rawType = typeof e.type === 'string' ? e.type : undefined;
  const isAdmin =
    rawType?.startsWith('admin.') ??
    (typeof e.operationType === 'string' && typeof e.resourceType === 'string');
  const base = isAdmin ? adminEvent(e, rawType, where) : userEvent(e, rawType, where);

  const auth = optRecord(e, 'authDetails');
  const details = optRecord(e, 'details');
  return toProviderEvent(
    'keycloak',
    {
      ...base,
      id,
      occurredAt,
      clientId: optString(e, 'clientId') ?? optString(auth, 'clientId'),
      attributes: {
        realmId: optString(e, 'realmId') ?? optString(auth, 'realmId'),
        ip: optString(e, 'ipAddress') ?? optString(auth, 'ipAddress'),
        error: optString(e, 'error'),
        username: optString(details, 'username') ?? optString(auth, 'username'),
        grantType: optString(details, 'grant_type'),
        scope: optString(details, 'scope'),
        reason: optString(details, 'reason'),
        refreshTokenType: optString(details, 'refresh_token_type'),
        ...base.attributes,
      },
    },
    ctx,
  );
}

type Base = Omit<RawProviderEvent, 'id' | 'occurredAt'>;

function userEvent(e: JsonRecord, rawType: string | undefined, where: string): Base {
  if (!rawType) throw malformed(`${where}.type: expected a non-empty string`);
  const kcType = rawType.startsWith('access.') ? rawType.slice('access.'.length) : rawType;
  const failed = kcType.endsWith('_ERROR');
  const baseType = failed ? kcType.slice(0, -'_ERROR'.length) : kcType;
  const auth = optRecord(e, 'authDetails');
  const details = optRecord(e, 'details');

  const refreshId = optString(details, 'refresh_token_id');
  const updatedRefreshId = optString(details, 'updated_refresh_token_id');
  const type = mapUserType(baseType);
  return {
    type,
    vendorType: rawType,
    outcome: failed || optString(e, 'error') ? 'failure' : 'success',
    subject: optString(e, 'userId') ?? optString(auth, 'userId'),
    sessionId: optString(e, 'sessionId') ?? optString(auth, 'sessionId'),
    tokenIds: [optString(details, 'token_id'), refreshId, updatedRefreshId],
    // A failed refresh rotated nothing.
    rotation:
      type === 'token_refreshed' && !failed
        ? { previous: [refreshId], next: [updatedRefreshId] }
        : undefined,
  };
}

/** Keycloak user event type (without `_ERROR`) to the domain type. */
function mapUserType(t: string): ProviderEventType {
  switch (t) {
    case 'LOGIN':
      return 'session_started';
    case 'LOGOUT':
      return 'session_ended';
    case 'CODE_TO_TOKEN':
    case 'CLIENT_LOGIN':
    case 'TOKEN_EXCHANGE':
    case 'OAUTH2_DEVICE_CODE_TO_TOKEN':
    case 'AUTHREQID_TO_TOKEN':
      return 'token_issued';
    case 'REFRESH_TOKEN':
      return 'token_refreshed';
    case 'REVOKE_GRANT':
      return 'token_revoked';
    case 'UPDATE_PASSWORD':
    case 'UPDATE_CREDENTIAL':
    case 'RESET_PASSWORD':
    case 'REMOVE_CREDENTIAL':
    case 'UPDATE_TOTP':
    case 'REMOVE_TOTP':
      return 'credential_changed';
    case 'DELETE_ACCOUNT':
    case 'USER_DISABLED_BY_PERMANENT_LOCKOUT':
      return 'account_disabled';
    default:
      return 'other';
  }
}

function adminEvent(e: JsonRecord, rawType: string | undefined, where: string): Base {
  // p2-inc: "admin.<RESOURCE>-<OPERATION>"; plain admin events carry the two fields.
  const fromType = rawType ? /^admin\.([A-Z_]+)-([A-Z_]+)$/.exec(rawType) : null;
  const resourceType = optString(e, 'resourceType') ?? fromType?.[1];
  const operationType = optString(e, 'operationType') ?? fromType?.[2];
  if (!resourceType || !operationType) {
    throw malformed(`${where}: admin event without resourceType/operationType`);
  }
  const auth = optRecord(e, 'authDetails');
  const details = optRecord(e, 'details');
  const resourcePath = optString(e, 'resourcePath') ?? '';
  const userPath = /^users\/([^/]+)(?:\/(.*))?$/.exec(resourcePath);
  const sessionPath = /^sessions\/([^/]+)$/.exec(resourcePath);

  let type: ProviderEventType = 'other';
  let sessionId: string | undefined;
  if (resourceType === 'USER' && userPath) {
    const sub = userPath[2];
    if (operationType === 'DELETE' && sub === undefined) type = 'account_disabled';
    else if (operationType === 'UPDATE' && sub === undefined && disables(e.representation)) {
      type = 'account_disabled';
    } else if (operationType === 'ACTION' && sub === 'reset-password') type = 'credential_changed';
    else if (operationType === 'ACTION' && sub === 'logout') type = 'session_revoked';
  } else if (resourceType === 'USER_SESSION' && operationType === 'DELETE' && sessionPath) {
    type = 'session_revoked';
    sessionId = sessionPath[1];
  }

  const outcome: ProviderOutcome = optString(e, 'error') ? 'failure' : 'success';
  return {
    type,
    vendorType: rawType ?? `admin.${resourceType}-${operationType}`,
    outcome,
    subject: userPath?.[1] ?? optString(details, 'userId'),
    sessionId,
    attributes: {
      resourceType,
      operationType,
      actorUserId: optString(auth, 'userId'),
    },
  };
}

/** True when an admin USER UPDATE representation sets `enabled` to false. */
function disables(representation: unknown): boolean {
  let rep = representation;
  if (typeof rep === 'string') {
    if (rep.length > MAX_REPRESENTATION_LENGTH) return false;
    try {
      rep = JSON.parse(rep) as unknown;
    } catch {
      return false;
    }
  }
  return isRecord(rep) && rep.enabled === false;
}
