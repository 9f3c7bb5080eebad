import { createHash } from 'node:crypto';

import type { Fingerprinter } from '../audit/fingerprint.js';
import type {
  ProviderEvent,
  ProviderEventType,
  ProviderName,
  ProviderOutcome,
} from '../domain/provider-event.js';
import { TokenwatchError } from '../errors.js';

/**
 * Defensive reading of vendor payloads. Everything a provider sends is treated as hostile: wrong
 * types, missing fields, huge strings, deep nesting. Normalizers read through these helpers so
 * the limits and the fingerprinting of secrets live in one place.
 */

/** Collaborators every normalizer needs. */
export interface NormalizeContext {
  fingerprinter: Fingerprinter;
  /** Clock for `observedAt` (unix ms). */
  now: () => number;
  /** Most events accepted in one payload (default {@link DEFAULT_MAX_EVENTS}). */
  maxEvents?: number;
}

export const DEFAULT_MAX_EVENTS = 10_000;
export const DEFAULT_MAX_DEPTH = 64;
export const MAX_ATTRIBUTE_LENGTH = 256;
export const MAX_VENDOR_TYPE_LENGTH = 128;
/** Provider event ids longer than this are not ids but an attack; they are rejected. */
export const MAX_EVENT_ID_LENGTH = 256;
/** Subjects and client ids are descriptive, so they are truncated rather than rejected. */
export const MAX_NAME_LENGTH = 256;

export type JsonRecord = Record<string, unknown>;
export type AttributeValue = string | number | boolean | null;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** ERR_WEBHOOK_MALFORMED (400) with a message naming what was wrong. */
export function malformed(message: string, details?: Record<string, unknown>): TokenwatchError {
  return new TokenwatchError('ERR_WEBHOOK_MALFORMED', message, { details });
}

export function truncate(value: string, max: number): string {
  return value.length > max ? value.slice(0, max) : value;
}

/** A non-empty string at `obj[key]`, else undefined (optional fields tolerate wrong types). */
export function optString(obj: unknown, key: string): string | undefined {
  if (!isRecord(obj)) return undefined;
  const v = obj[key];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Like {@link optString} but also accepts finite numbers (some vendors send numeric ids). */
export function optId(obj: unknown, key: string): string | undefined {
  if (!isRecord(obj)) return undefined;
  const v = obj[key];
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

export function optNumber(obj: unknown, key: string): number | undefined {
  if (!isRecord(obj)) return undefined;
  const v = obj[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function optRecord(obj: unknown, key: string): JsonRecord | undefined {
  if (!isRecord(obj)) return undefined;
  const v = obj[key];
  return isRecord(v) ? v : undefined;
}

/** The provider's event id: required, a string (or number), at most {@link MAX_EVENT_ID_LENGTH}. */
export function requireEventId(value: unknown, path: string): string {
  const id = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof id !== 'string' || id.length === 0) {
    throw malformed(`${path}: expected a non-empty string event id`, { path });
  }
  if (id.length > MAX_EVENT_ID_LENGTH) {
    throw malformed(`${path}: event id longer than ${MAX_EVENT_ID_LENGTH} characters`, { path });
  }
  return id;
}

export function requireString(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw malformed(`${path}: expected a non-empty string`, { path });
  }
  return value;
}

/** An ISO 8601 / RFC 3339 timestamp string to unix ms. */
export function requireIsoTime(value: unknown, path: string): number {
  // Longest sane RFC 3339 string is ~35 chars; refuse to hand megabytes to Date.parse.
  if (typeof value !== 'string' || value.length > 64) {
    throw malformed(`${path}: expected an ISO 8601 timestamp string`, { path });
  }
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw malformed(`${path}: unparseable timestamp`, { path });
  return ms;
}

/** A unix-ms timestamp number (Keycloak `time`). */
export function requireEpochMs(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw malformed(`${path}: expected a unix-ms timestamp number`, { path });
  }
  return Math.trunc(value);
}

/**
 * A NumericDate (RFC 7519 §2: seconds) to unix ms. Early CAEP drafts put milliseconds in
 * `event_timestamp`, so values too large to be seconds (after year 5138) are taken as ms.
 */
export function numericDateToMs(value: number): number {
  return value > 1e11 ? Math.trunc(value) : Math.trunc(value * 1000);
}

/** Refuses more than `max` events with ERR_WEBHOOK_TOO_LARGE (413). */
export function assertEventCount(count: number, max: number = DEFAULT_MAX_EVENTS): void {
  if (count > max) {
    throw new TokenwatchError(
      'ERR_WEBHOOK_TOO_LARGE',
      `delivery holds ${count} events, more than the limit of ${max}`,
      { details: { limit: 'events', max } },
    );
  }
}

/**
 * Refuses values nested deeper than `max` (objects and arrays), iteratively so a hostile payload
 * cannot exhaust the stack of the checker itself.
 */
export function assertMaxDepth(value: unknown, max: number = DEFAULT_MAX_DEPTH): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) throw tooDeep(max);
    const children = Array.isArray(v) ? (v as unknown[]) : Object.values(v);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
}

export function tooDeep(max: number): TokenwatchError {
  return malformed(`payload nested deeper than ${max} levels`, { limit: 'depth', max });
}

/**
 * Canonical JSON (sorted keys, no whitespace) for content-derived ids. Callers check the depth
 * first ({@link assertMaxDepth}); the recursion here is then bounded.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys
      .filter((k) => value[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/**
 * An event as a normalizer reads it, with RAW token and session ids. Only
 * {@link toProviderEvent} turns it into a {@link ProviderEvent}, fingerprinting every secret on
 * the way, so no other code path can leak a raw id into the output.
 */
export interface RawProviderEvent {
  id: string;
  type: ProviderEventType;
  occurredAt: number;
  outcome: ProviderOutcome;
  vendorType: string;
  subject?: string | undefined;
  clientId?: string | undefined;
  /** Raw session id: fingerprinted. */
  sessionId?: string | undefined;
  /** Raw token ids: fingerprinted, deduplicated, empties dropped. */
  tokenIds?: readonly (string | undefined)[];
  /** Raw ids: fingerprinted. */
  rotation?: {
    previous?: readonly (string | undefined)[];
    next?: readonly (string | undefined)[];
    familyId?: string | undefined;
  };
  /** Non-secret attributes; undefined values are dropped, strings bounded. */
  attributes?: Record<string, AttributeValue | undefined>;
}

export function toProviderEvent(
  provider: ProviderName,
  raw: RawProviderEvent,
  ctx: NormalizeContext,
): ProviderEvent {
  const fp = (v: string): string => ctx.fingerprinter.of(v);
  const fps = (vs: readonly (string | undefined)[] | undefined): string[] => [
    ...new Set((vs ?? []).filter((v): v is string => typeof v === 'string' && v !== '').map(fp)),
  ];

  const event: ProviderEvent = {
    provider,
    id: raw.id,
    type: raw.type,
    occurredAt: raw.occurredAt,
    observedAt: ctx.now(),
    tokenIds: fps(raw.tokenIds),
    outcome: raw.outcome,
    vendorType: truncate(raw.vendorType, MAX_VENDOR_TYPE_LENGTH),
    attributes: boundAttributes(raw.attributes),
  };
  if (raw.subject) event.subject = truncate(raw.subject, MAX_NAME_LENGTH);
  if (raw.clientId) event.clientId = truncate(raw.clientId, MAX_NAME_LENGTH);
  if (raw.sessionId) event.sessionId = fp(raw.sessionId);
  if (raw.rotation) {
    const previous = fps(raw.rotation.previous);
    const next = fps(raw.rotation.next);
    const familyId = raw.rotation.familyId ? fp(raw.rotation.familyId) : undefined;
    if (previous.length > 0 || next.length > 0 || familyId) {
      event.rotation = familyId ? { previous, next, familyId } : { previous, next };
    }
  }
  return event;
}

function boundAttributes(
  attrs: Record<string, AttributeValue | undefined> | undefined,
): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  if (!attrs) return out;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    if (typeof v === 'number' && !Number.isFinite(v)) continue;
    out[k] = typeof v === 'string' ? truncate(v, MAX_ATTRIBUTE_LENGTH) : v;
  }
  return out;
}
