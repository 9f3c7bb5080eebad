import type {
  ProviderEvent,
  ProviderEventType,
  ProviderOutcome,
} from '../domain/provider-event.js';
import {
  type JsonBodyLimits,
  assertJsonTextDepth,
  parseJsonBody,
  parseJsonLines,
} from './json-body.js';
import {
  DEFAULT_MAX_DEPTH,
  type JsonRecord,
  type NormalizeContext,
  assertEventCount,
  assertMaxDepth,
  isRecord,
  malformed,
  optId,
  optNumber,
  optRecord,
  optString,
  requireEventId,
  requireIsoTime,
  requireString,
  toProviderEvent,
} from './payload-reader.js';

/**
 * Auth0: Log Stream (custom webhook) deliveries and Management API `/api/v2/logs` pages to
 * {@link ProviderEvent}s. Type codes: https://auth0.com/docs/deploy-monitor/logs/log-event-type-codes
 */

/** Options for {@link parseAuth0Body}. */
export interface Auth0BodyOptions extends JsonBodyLimits {
  /** The request's Content-Type; `application/x-ndjson` / `jsonl` force JSON-lines parsing. */
  contentType?: string | undefined;
}

/**
 * Parses a Log Stream body into its elements. Auth0 sends a JSON array, JSON lines or a single
 * JSON object depending on the stream's "content format", usually all as `application/json`, so
 * the shape is sniffed: `[` is an array, otherwise one object, otherwise one object per line.
 *
 * @throws TokenwatchError ERR_WEBHOOK_MALFORMED (not JSON, not objects, nested deeper than
 *   `maxDepth`, default 64) or ERR_WEBHOOK_TOO_LARGE (more than `maxEvents`, default 10 000).
 */
export function parseAuth0Body(body: string | Buffer, options: Auth0BodyOptions = {}): unknown[] {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const trimmed = text.trim();
  if (trimmed === '') throw malformed('Auth0 body is empty');
  const ct = options.contentType?.toLowerCase() ?? '';
  if (/ndjson|jsonl|json-lines|json-seq/.test(ct)) return parseJsonLines(trimmed, options);
  if (trimmed.startsWith('[')) return parseJsonBody(trimmed, options) as unknown[];
  if (!trimmed.startsWith('{')) throw malformed('Auth0 body: expected a JSON array or object');
  // A single (possibly pretty-printed) object and JSON lines both start with "{".
  assertJsonTextDepth(trimmed, options.maxDepth ?? DEFAULT_MAX_DEPTH);
  let single: unknown;
  try {
    single = JSON.parse(trimmed);
  } catch {
    return parseJsonLines(trimmed, options);
  }
  return [single];
}

/**
 * Normalizes Auth0 log elements: an array (parsed body or Management API page) or a single
 * element, each `{log_id, data:{…}}` or a bare `data` object.
 *
 * @throws TokenwatchError ERR_WEBHOOK_MALFORMED when an element has no log id, type or date.
 */
export function normalizeAuth0(payload: unknown, ctx: NormalizeContext): ProviderEvent[] {
  const elements = Array.isArray(payload) ? payload : [payload];
  assertEventCount(elements.length, ctx.maxEvents);
  assertMaxDepth(payload, DEFAULT_MAX_DEPTH);
  return elements.map((el, i) => normalizeElement(el, Array.isArray(payload) ? `[${i}]` : '', ctx));
}

function normalizeElement(el: unknown, path: string, ctx: NormalizeContext): ProviderEvent {
  if (!isRecord(el)) throw malformed(`Auth0 log${path}: expected an object`, { path });
  // Envelope `{log_id, data}` per providers.md (unverified): also accept the bare data object.
  const enveloped = isRecord(el.data) && typeof el.data.type === 'string';
  const data: JsonRecord = enveloped ? (el.data as JsonRecord) : el;
  const dataPath = enveloped ? `${path}.data` : path;

  const id = requireEventId(
    el.log_id ?? data.log_id ?? data._id,
    `Auth0 log${enveloped ? path : dataPath}.log_id`,
  );
  const code = requireString(data.type, `Auth0 log${dataPath}.type`);
  const occurredAt = requireIsoTime(data.date, `Auth0 log${dataPath}.date`);
  const { type, outcome } = mapAuth0Type(code);

  const details = optRecord(data, 'details');
  const refreshToken = optRecord(details, 'refresh_token');
  const tokenIds = [optString(details, 'access_token_jti')];
  if (code === 'srrt' || code === 'resource_cleanup') {
    // srrt: credential_id is the revoked refresh token's id.
    tokenIds.push(optString(details, 'credential_id'));
  }
  const grantId = optString(details, 'grant_id');

  return toProviderEvent(
    'auth0',
    {
      id,
      type,
      occurredAt,
      outcome,
      vendorType: code,
      subject: optString(data, 'user_id'),
      clientId: optString(data, 'client_id'),
      sessionId:
        optString(data, 'session_id') ??
        optString(details, 'session_id') ??
        optString(refreshToken, 'session_id'),
      tokenIds,
      // The rotation family joins a refresh (sertft) to a later reuse detection (ferrt).
      rotation:
        code === 'sertft' || code === 'ferrt'
          ? { familyId: optId(details, 'familyId') }
          : undefined,
      attributes: {
        ip: optString(data, 'ip'),
        userAgent: optString(data, 'user_agent'),
        description: optString(data, 'description'),
        clientName: optString(data, 'client_name'),
        connection: optString(data, 'connection'),
        hostname: optString(data, 'hostname'),
        audience: optString(data, 'audience') ?? optString(details, 'audience'),
        scope: optString(data, 'scope') ?? optString(details, 'scope'),
        userName: optString(data, 'user_name'),
        tokenCounter: optNumber(details, 'tokenCounter'),
        // A grant id is not a bearer secret but still an opaque handle: keep it joinable only.
        grantId: grantId ? ctx.fingerprinter.of(grantId) : undefined,
      },
    },
    ctx,
  );
}

const ISSUED_SUCCESS = [
  'seacft',
  'seccft',
  'sepft',
  'sede',
  'seoobft',
  'seotpft',
  'sercft',
  'sens',
];
const ISSUED_FAILURE = [
  'feacft',
  'feccft',
  'fepft',
  'fede',
  'feoobft',
  'feotpft',
  'fercft',
  'fens',
];

/** Domain type and outcome of an Auth0 log type code. */
export interface Auth0TypeMapping {
  type: ProviderEventType;
  outcome: ProviderOutcome;
}

const TYPE_MAP: ReadonlyMap<string, Auth0TypeMapping> = new Map<string, Auth0TypeMapping>([
  ...ISSUED_SUCCESS.map((c): [string, Auth0TypeMapping] => [
    c,
    { type: 'token_issued', outcome: 'success' },
  ]),
  ...ISSUED_FAILURE.map((c): [string, Auth0TypeMapping] => [
    c,
    { type: 'token_issued', outcome: 'failure' },
  ]),
  ['sertft', { type: 'token_refreshed', outcome: 'success' }],
  ['fertft', { type: 'token_refreshed', outcome: 'failure' }],
  // "Failed Exchange of Rotating Refresh Token. This could occur when reuse is detected."
  ['ferrt', { type: 'refresh_reuse_detected', outcome: 'failure' }],
  ['srrt', { type: 'token_revoked', outcome: 'success' }],
  ['resource_cleanup', { type: 'token_revoked', outcome: 'success' }],
  ['slo', { type: 'session_ended', outcome: 'success' }],
  ['flo', { type: 'session_ended', outcome: 'failure' }],
  ['oidc_backchannel_logout_succeeded', { type: 'session_revoked', outcome: 'success' }],
  ['oidc_backchannel_logout_failed', { type: 'session_revoked', outcome: 'failure' }],
  ['s', { type: 'session_started', outcome: 'success' }],
  ['ssa', { type: 'session_started', outcome: 'success' }],
  ['f', { type: 'session_started', outcome: 'failure' }],
  ['fsa', { type: 'session_started', outcome: 'failure' }],
  ['fp', { type: 'session_started', outcome: 'failure' }],
  ['fu', { type: 'session_started', outcome: 'failure' }],
  ['scp', { type: 'credential_changed', outcome: 'success' }],
  ['sdu', { type: 'account_disabled', outcome: 'success' }],
]);

/** Auth0 log type code to the domain type and outcome; unknown codes are `other`/`unknown`. */
export function mapAuth0Type(code: string): Auth0TypeMapping {
  return TYPE_MAP.get(code) ?? { type: 'other', outcome: 'unknown' };
}
