import { SeverityNumber, type Attributes, type HrTime } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { canonicalRecord } from '../audit/canonical.js';
import type { ChainedRecord } from '../audit/record-stream.js';
import { toOcsf } from '../compliance/ocsf.js';

/** Instrumentation scope of the audit stream; one object, as the SDK expects (identity). */
export interface AuditLogScope {
  name: string;
  version: string;
}

/** What every log record of one ledger shares. */
export interface AuditLogContext {
  ledgerId: string;
  productVersion: string;
  resource: Resource;
  scope: AuditLogScope;
}

/**
 * OCSF severity_id to the OpenTelemetry log data model's SeverityNumber
 * (https://opentelemetry.io/docs/specs/otel/logs/data-model/#field-severitynumber): 1
 * Informational → INFO, 2 Low → INFO2, 3 Medium → WARN, 4 High → ERROR, 5 Critical → FATAL.
 */
const SEVERITY: Record<number, [SeverityNumber, string]> = {
  1: [SeverityNumber.INFO, 'INFO'],
  2: [SeverityNumber.INFO2, 'INFO2'],
  3: [SeverityNumber.WARN, 'WARN'],
  4: [SeverityNumber.ERROR, 'ERROR'],
  5: [SeverityNumber.FATAL, 'FATAL'],
};

const hr = (ms: number): HrTime => [Math.floor(ms / 1000), (ms % 1000) * 1_000_000];
const numberOf = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const stringOf = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * One committed audit record as an OpenTelemetry log record.
 *
 * Carries what the ledger holds and nothing more: the ledger never stores a raw token, key or
 * secret (fingerprints only), so neither does the log record. `tokenwatch.audit.attrs` is the
 * canonical attribute text exactly as hashed, and with seq, time, source, type, kind and
 * fingerprint it lets a SIEM recompute the leaf hash and check `tokenwatch.audit.chain`
 * (docs/ledger-format.md). OCSF class and activity come from the same mapping the compliance
 * export uses (src/compliance/ocsf.ts); records it maps to the Base Event (class 0) get none.
 */
export function toLogRecord(r: ChainedRecord, ctx: AuditLogContext): ReadableLogRecord {
  const attrs = JSON.parse(r.attrs) as Record<string, unknown>;
  const ocsf = toOcsf(r, attrs, canonicalRecord(r), {
    ledgerId: ctx.ledgerId,
    productVersion: ctx.productVersion,
  });
  const attributes: Attributes = {
    'tokenwatch.ledger.id': ctx.ledgerId,
    'tokenwatch.audit.seq': r.seq,
    'tokenwatch.audit.type': r.type,
    'tokenwatch.audit.source': r.source,
    'tokenwatch.audit.chain': r.chain,
    'tokenwatch.audit.attrs': r.attrs,
  };
  if (r.kind !== null) attributes['tokenwatch.audit.kind'] = r.kind;
  if (r.fingerprint !== null) attributes['tokenwatch.audit.fingerprint'] = r.fingerprint;
  const classUid = numberOf(ocsf.class_uid);
  if (classUid !== undefined && classUid !== 0) {
    attributes['ocsf.class_uid'] = classUid;
    attributes['ocsf.class_name'] = stringOf(ocsf.class_name) ?? '';
    attributes['ocsf.category_uid'] = numberOf(ocsf.category_uid) ?? 0;
    attributes['ocsf.activity_id'] = numberOf(ocsf.activity_id) ?? 0;
    attributes['ocsf.activity_name'] = stringOf(ocsf.activity_name) ?? '';
    attributes['ocsf.type_uid'] = numberOf(ocsf.type_uid) ?? 0;
    attributes['ocsf.severity_id'] = numberOf(ocsf.severity_id) ?? 1;
  }
  const [severityNumber, severityText] = SEVERITY[numberOf(ocsf.severity_id) ?? 1] ?? [
    SeverityNumber.INFO,
    'INFO',
  ];
  const time = hr(r.time);
  return {
    hrTime: time,
    hrTimeObserved: time,
    severityNumber,
    severityText,
    body: stringOf(attrs.summary) ?? r.type,
    eventName: `tokenwatch.audit.${r.type}`,
    resource: ctx.resource,
    instrumentationScope: ctx.scope,
    attributes,
    droppedAttributesCount: 0,
  };
}
