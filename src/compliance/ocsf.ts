import { isIP } from 'node:net';
import type { CanonicalFields } from '../audit/canonical.js';

/**
 * Audit records as OCSF 1.4.0 events (https://schema.ocsf.io), for SIEMs (Security Lake, Splunk,
 * Datadog). Pure and deterministic: the same record and context always give the same event with
 * the same key order, which is what lets `verify-export` re-derive every mapped field from the
 * canonical record carried in `raw_data`. The mapping table and its reasons: docs/compliance.md.
 *
 * Choices:
 * - provider events → Authentication 3002 (`auth_protocol_id` 6 OAuth 2.0, 4 OpenID for
 *   back-channel logout), account events → Account Change 3001;
 * - token lifecycle (Redis keyspace) → API Activity 6003 Create/Update/Delete on a credential
 *   resource, not Authentication 99: a cache write is no authentication attempt and names no
 *   authenticating user, while 6003 says exactly what was observed (an operation on a resource);
 * - findings → Detection Finding 2004 (Create when opened, Close when resolved);
 * - revocation.propagation → Compliance Finding 2003: one test of the SOC 2 CC6.2 control
 *   "revoked tokens leave the cache within the SLA", Pass / Fail / Warning (latency unknown),
 *   with the latency as the typed `duration` (ms) rather than only inside `raw_data`;
 * - tokenwatch's own records → Application Lifecycle 6002 (start/stop) and Event Log Activity
 *   1008 (the audit log itself: genesis, retention, degraded windows, blind spots);
 * - tokens only ever as fingerprints (`hmac-sha256:<keyId>:<hex>`), never raw.
 */

/**
 * Version of this mapping; stated in bundle manifests so a verifier knows it can re-derive.
 * 2: OCSF 1.4.0 throughout (1 said 1.3.0 but used 1.4.0 attributes), revocation.propagation
 * as Compliance Finding, `type_name` the caption of `type_uid`.
 */
export const OCSF_MAPPING_VERSION = 2;
/**
 * OCSF schema version every event follows, and is validated against in
 * test/compliance/ocsf-validation.test.ts (the vendored definitions in test/fixtures/ocsf/).
 */
export const OCSF_SCHEMA_VERSION = '1.4.0';

/** What every event's metadata names besides the record. */
export interface OcsfContext {
  ledgerId: string;
  /** tokenwatch version that produced the export. */
  productVersion: string;
}

interface ClassInfo {
  category_uid: number;
  category_name: string;
  class_uid: number;
  class_name: string;
}

const AUTHENTICATION: ClassInfo = {
  category_uid: 3,
  category_name: 'Identity & Access Management',
  class_uid: 3002,
  class_name: 'Authentication',
};
const ACCOUNT_CHANGE: ClassInfo = {
  ...AUTHENTICATION,
  class_uid: 3001,
  class_name: 'Account Change',
};
const API_ACTIVITY: ClassInfo = {
  category_uid: 6,
  category_name: 'Application Activity',
  class_uid: 6003,
  class_name: 'API Activity',
};
const APP_LIFECYCLE: ClassInfo = {
  ...API_ACTIVITY,
  class_uid: 6002,
  class_name: 'Application Lifecycle',
};
const DETECTION_FINDING: ClassInfo = {
  category_uid: 2,
  category_name: 'Findings',
  class_uid: 2004,
  class_name: 'Detection Finding',
};
const COMPLIANCE_FINDING: ClassInfo = {
  ...DETECTION_FINDING,
  class_uid: 2003,
  class_name: 'Compliance Finding',
};
const EVENT_LOG: ClassInfo = {
  category_uid: 1,
  category_name: 'System Activity',
  class_uid: 1008,
  class_name: 'Event Log Activity',
};
const BASE_EVENT: ClassInfo = {
  category_uid: 0,
  category_name: 'Uncategorized',
  class_uid: 0,
  class_name: 'Base Event',
};

/** OCSF severity_id: 1 Informational .. 5 Critical. */
const SEVERITY: Record<string, [number, string]> = {
  info: [1, 'Informational'],
  low: [2, 'Low'],
  medium: [3, 'Medium'],
  high: [4, 'High'],
  critical: [5, 'Critical'],
};

type Attrs = Record<string, unknown>;
type Event = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;
/** An address only when it is one: an `ip_t` field must hold an IPv4 or IPv6 address. */
const ip = (v: unknown): string | undefined =>
  typeof v === 'string' && isIP(v) !== 0 ? v : undefined;
const rec = (v: unknown): Attrs =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Attrs) : {};

/** Drops undefined members (JSON.stringify would too; deep-equal comparisons would not). */
function compact<T extends Event>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

interface Activity {
  info: ClassInfo;
  id: number;
  name: string;
  /** A key of SEVERITY (unknown values map to Informational). */
  severity?: string;
  status?: 0 | 1 | 2;
  fields: Event;
}

const STATUS_NAME = ['Unknown', 'Success', 'Failure'] as const;

/** Provider event types (`provider.<type>`) that are account changes rather than authentications. */
const ACCOUNT_TYPES: Record<string, [number, string]> = {
  account_disabled: [5, 'Disable'],
  credential_changed: [99, 'Credential Change'],
};

const AUTH_TYPES: Record<string, [number, string]> = {
  session_started: [1, 'Logon'],
  session_ended: [2, 'Logoff'],
  session_revoked: [2, 'Logoff'],
  token_issued: [99, 'Token Issued'],
  token_refreshed: [99, 'Token Refreshed'],
  token_revoked: [99, 'Token Revoked'],
  refresh_reuse_detected: [99, 'Refresh Token Reuse Detected'],
  other: [99, 'Other'],
};

/** Redis keyspace events: API Activity on the cached credential. */
const TOKEN_TYPES: Record<string, [number, string]> = {
  written: [1, 'Create'],
  appeared: [1, 'Create'],
  // Found by a baseline SCAN: the key was read, not written.
  present: [2, 'Read'],
  ttl_changed: [3, 'Update'],
  persisted: [3, 'Update'],
  renamed: [3, 'Update'],
  expired: [4, 'Delete'],
  deleted: [4, 'Delete'],
  evicted: [4, 'Delete'],
  vanished: [4, 'Delete'],
};

function outcomeStatus(v: unknown): 0 | 1 | 2 {
  return v === 'success' ? 1 : v === 'failure' ? 2 : 0;
}

function providerActivity(r: CanonicalFields, a: Attrs, event: string): Activity {
  const provider = str(a.provider) ?? 'unknown';
  const subject = str(a.subject);
  // OCSF user needs one of account, name, uid: a provider event without a subject names none.
  const user =
    subject === undefined ? { name: 'unknown', type_id: 0 } : { uid: subject, type_id: 1 };
  const attributes = rec(a.attributes);
  const src = compact({ ip: ip(attributes.ip) });
  const userAgent = str(attributes.userAgent);
  const session = a.sessionId === undefined ? undefined : { uid: str(a.sessionId) };
  const common: Event = compact({
    user,
    src_endpoint: Object.keys(src).length > 0 ? src : undefined,
    http_request: userAgent === undefined ? undefined : { user_agent: userAgent },
    status_detail: str(attributes.reason),
  });
  const account = ACCOUNT_TYPES[event];
  if (account) {
    // Account Change has no service or session: the provider acts, in its session if named.
    return {
      info: ACCOUNT_CHANGE,
      id: account[0],
      name: account[1],
      status: outcomeStatus(a.outcome),
      fields: compact({ ...common, actor: compact({ app_name: provider, session }) }),
    };
  }
  const auth = AUTH_TYPES[event] ?? AUTH_TYPES.other ?? [99, 'Other'];
  return {
    info: AUTHENTICATION,
    id: auth[0],
    name: auth[1],
    severity: event === 'refresh_reuse_detected' ? 'medium' : 'info',
    status: outcomeStatus(a.outcome),
    fields: compact({
      ...common,
      service: { name: provider },
      session,
      auth_protocol_id: provider === 'oidc' ? 4 : 6,
      auth_protocol: provider === 'oidc' ? 'OpenID' : 'OAUTH 2.0',
      is_remote: true,
    }),
  };
}

function tokenActivity(r: CanonicalFields, a: Attrs, event: string): Activity {
  const [id, name] = TOKEN_TYPES[event] ?? [99, 'Other'];
  const data = compact({
    ttl_ms: num(a.ttlMs) ?? (a.ttlMs === null ? null : undefined),
    due_time: num(a.dueAt) ?? (a.dueAt === null ? null : undefined),
    lifetime_ms: num(a.lifetimeMs),
    via: str(a.via),
  });
  return {
    info: API_ACTIVITY,
    id,
    name,
    status: 1,
    fields: compact({
      // Keyspace notifications do not say which client wrote the key.
      actor: { app_name: 'unknown' },
      api: { operation: str(a.redisEvent) ?? str(a.via) ?? event, service: { name: 'redis' } },
      src_endpoint: { name: 'unknown' },
      dst_endpoint: compact({ name: str(a.node) }),
      resources: [
        compact({
          type: 'oauth_token',
          uid: r.fingerprint ?? undefined,
          name: r.kind ?? undefined,
          data: Object.keys(data).length > 0 ? data : undefined,
        }),
      ],
    }),
  };
}

function findingActivity(r: CanonicalFields, a: Attrs, rule: string, ctx: OcsfContext): Activity {
  const resolved = a.state === 'resolved';
  const criteria = Array.isArray(a.criteria) ? a.criteria.filter((c) => typeof c === 'string') : [];
  const evidence = Array.isArray(a.evidenceSeqs)
    ? a.evidenceSeqs.filter((s): s is number => typeof s === 'number')
    : [];
  return {
    info: DETECTION_FINDING,
    id: resolved ? 3 : 1,
    name: resolved ? 'Close' : 'Create',
    severity: str(a.severity) ?? 'info',
    fields: compact({
      status_id: resolved ? 4 : 1,
      status: resolved ? 'Resolved' : 'New',
      is_alert: !resolved,
      finding_info: compact({
        uid: str(a.id) ?? `${ctx.ledgerId}:${r.seq}`,
        title: str(a.summary),
        types: [rule],
        analytic: { name: rule, type_id: 1, type: 'Rule' },
        created_time: num(a.openedAt),
        modified_time: r.time,
        tags: criteria.map((c) => ({ name: 'soc2', value: c })),
        related_events: evidence.map((s) => ({ uid: `${ctx.ledgerId}:${s}` })),
      }),
      resources:
        r.fingerprint === null && r.kind === null
          ? undefined
          : [
              compact({
                type: 'oauth_token',
                uid: r.fingerprint ?? undefined,
                name: r.kind ?? undefined,
              }),
            ],
    }),
  };
}

/** compliance.status_id: 1 Pass, 2 Warning (no result: latency unknown), 3 Fail. */
const COMPLIANCE_STATUS: Record<string, [number, string]> = {
  true: [1, 'Pass'],
  false: [3, 'Fail'],
  null: [2, 'Warning'],
};

function propagationActivity(r: CanonicalFields, a: Attrs, ctx: OcsfContext): Activity {
  const met = typeof a.metSla === 'boolean' ? a.metSla : null;
  const [statusId, status] = COMPLIANCE_STATUS[String(met)] ?? [2, 'Warning'];
  const latency = num(a.latencySeconds);
  const sla = num(a.slaSeconds);
  const provider = str(a.provider) ?? 'unknown';
  const eventId = str(a.providerEventId);
  return {
    info: COMPLIANCE_FINDING,
    id: 1,
    name: 'Create',
    severity: met === true ? 'info' : 'high',
    fields: compact({
      // The latency in ms, typed (OCSF `duration`: time the finding covers, in milliseconds).
      duration: latency === undefined ? undefined : Math.round(latency * 1000),
      finding_info: compact({
        uid: eventId === undefined ? `${ctx.ledgerId}:${r.seq}` : `${provider}:${eventId}`,
        title:
          `Revocation propagation of ${provider} ${str(a.eventType) ?? 'event'} ${eventId ?? ''}`.trim(),
        types: ['revocation_propagation'],
        analytic: { name: 'revocation_propagation', type_id: 1, type: 'Rule' },
        created_time: r.time,
      }),
      compliance: compact({
        control: 'CC6.2',
        standards: ['AICPA SOC 2'],
        requirements:
          sla === undefined ? undefined : [`matching tokens leave Redis within ${sla} s`],
        status_id: statusId,
        status,
      }),
    }),
  };
}

function adminActivity(a: Attrs): Activity {
  const allowed = a.outcome === 'allowed';
  return {
    info: API_ACTIVITY,
    id: 2,
    name: 'Read',
    severity: allowed ? 'info' : 'low',
    status: allowed ? 1 : 2,
    fields: compact({
      actor: { user: compact({ uid: str(a.principal) ?? 'anonymous', type_id: 0 }) },
      api: {
        operation: `${str(a.method) ?? 'GET'} ${str(a.route) ?? ''}`.trim(),
        service: { name: 'tokenwatch' },
      },
      src_endpoint: compact({
        ip: ip(a.remoteAddress),
        name: ip(a.remoteAddress) ? undefined : 'unknown',
      }),
      status_detail: str(a.outcome),
    }),
  };
}

const LOG_TYPES: Record<string, [number, string, keyof typeof SEVERITY]> = {
  'ledger.genesis': [6, 'Start', 'info'],
  'audit.retention_purge': [2, 'Delete', 'info'],
  'audit.archived': [4, 'Archive', 'info'],
  'audit.archive_expired': [2, 'Delete', 'info'],
  'audit.degraded': [99, 'Degraded', 'medium'],
  'audit.clock_skew': [99, 'Clock Skew', 'low'],
  'keyspace.gap': [99, 'Blind Spot', 'medium'],
  'keyspace.baseline': [99, 'Baseline', 'info'],
  'keyspace.flush': [1, 'Clear', 'medium'],
};

function classify(r: CanonicalFields, a: Attrs, ctx: OcsfContext): Activity {
  const dot = r.type.indexOf('.');
  const prefix = dot < 0 ? r.type : r.type.slice(0, dot);
  const rest = dot < 0 ? '' : r.type.slice(dot + 1);
  if (prefix === 'provider' && rest !== 'rejected' && rest !== 'stream_verified') {
    return providerActivity(r, a, rest);
  }
  if (prefix === 'provider') {
    // A webhook delivery or stream verification reaching tokenwatch.
    return {
      info: API_ACTIVITY,
      id: 1,
      name: 'Create',
      severity: rest === 'rejected' ? 'low' : 'info',
      status: rest === 'rejected' ? 2 : 1,
      fields: compact({
        actor: { app_name: str(a.provider) ?? 'unknown' },
        api: {
          operation: rest === 'rejected' ? 'deliver' : 'verify',
          service: { name: 'tokenwatch' },
        },
        src_endpoint: compact({
          ip: ip(a.remoteAddress),
          name: ip(a.remoteAddress) === undefined ? 'unknown' : undefined,
        }),
        status_detail: str(a.reason),
      }),
    };
  }
  if (prefix === 'token') return tokenActivity(r, a, rest);
  if (prefix === 'finding') return findingActivity(r, a, rest, ctx);
  if (r.type === 'admin.access') return adminActivity(a);
  if (r.type === 'revocation.propagation') return propagationActivity(r, a, ctx);
  if (r.type === 'system.started' || r.type === 'system.stopped') {
    const start = r.type === 'system.started';
    return {
      info: APP_LIFECYCLE,
      id: start ? 3 : 4,
      name: start ? 'Start' : 'Stop',
      status: 1,
      fields: {
        app: {
          name: 'tokenwatch',
          vendor_name: 'tokenwatch',
          version: str(a.version) ?? ctx.productVersion,
        },
      },
    };
  }
  const log = LOG_TYPES[r.type];
  if (log) {
    return {
      info: EVENT_LOG,
      id: log[0],
      name: log[1],
      severity: log[2],
      status: 1,
      fields: { log_name: 'tokenwatch-audit', log_provider: 'tokenwatch' },
    };
  }
  return { info: BASE_EVENT, id: 99, name: 'Other', fields: {} };
}

/** Canonical text of a record (`[1,seq,time,...]`) is carried verbatim in `raw_data`. */
export function toOcsf(
  r: CanonicalFields,
  attrs: Attrs,
  canonical: string,
  ctx: OcsfContext,
): Event {
  const act = classify(r, attrs, ctx);
  const [severityId, severityName] = SEVERITY[act.severity ?? 'info'] ?? [1, 'Informational'];
  const status = act.status;
  return compact({
    activity_id: act.id,
    activity_name: act.name,
    category_uid: act.info.category_uid,
    category_name: act.info.category_name,
    class_uid: act.info.class_uid,
    class_name: act.info.class_name,
    type_uid: act.info.class_uid * 100 + act.id,
    // The caption of type_uid: a source-specific activity (99) names itself in activity_name only.
    type_name: `${act.info.class_name}: ${act.id === 99 ? 'Other' : act.name}`,
    severity_id: severityId,
    severity: severityName,
    time: r.time,
    ...(status === undefined || act.info === DETECTION_FINDING
      ? {}
      : { status_id: status, status: STATUS_NAME[status] }),
    message: str(attrs.summary) ?? r.type,
    metadata: {
      version: OCSF_SCHEMA_VERSION,
      product: { name: 'tokenwatch', vendor_name: 'tokenwatch', version: ctx.productVersion },
      uid: `${ctx.ledgerId}:${r.seq}`,
      sequence: r.seq,
      log_name: 'tokenwatch-audit',
      log_provider: 'tokenwatch',
      event_code: r.type,
      logged_time: r.time,
    },
    ...act.fields,
    raw_data: canonical,
  });
}
