import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit/canonical.js';
import type { LedgerStore } from '../audit/store/ledger-store.js';
import type { Config } from '../config/schema.js';
import { resolveCorrelatorOptions } from '../correlate/options.js';
import { FINDING_RULES } from '../domain/finding.js';
import { correlatorOptionsFrom } from '../findings/correlator-config.js';

/**
 * The policy in force, as a ledger record (`config.policy`, source `system`), so a report of any
 * period judges tokens by the rules that applied then, without the config file of the day
 * (SOC 2 CC6.1 evidence must be self-contained; AT-C 205 "completeness and accuracy"). Written
 * by the app at every start, which is every change: the config is frozen while the process runs.
 *
 * It holds names, templates and thresholds only: no HMAC key, no signing key, no credential,
 * no fingerprint. Key templates are literal text with `{placeholder}` names, never values.
 */
export const POLICY_RECORD_TYPE = 'config.policy';

export interface PolicyTokenRule {
  kind: string;
  /** The key template (`oauth:access:{jti}`): placeholder names, no values. */
  key: string;
  /** null: the rule sets no maximum TTL. */
  maxTtlSeconds: number | null;
  requireProviderEvent: boolean;
}

export interface PolicyCorrelate {
  revocationSlaSeconds: number;
  ttlToleranceSeconds: number;
  revocationGraceSeconds: number;
  revocationLookbackSeconds: number;
  refreshReuseSlaSeconds: number;
  rotationSlaSeconds: number;
  rotationRequireSuccessor: boolean;
  attributionWindowSeconds: number;
  revocationEventTypes: string[];
  /** Per finding rule: whether it runs and its severity. */
  rules: Record<string, { enabled: boolean; severity: string }>;
}

/** The attrs of a `config.policy` record. */
export interface PolicyAttrs {
  tokens: PolicyTokenRule[];
  correlate: PolicyCorrelate;
  /** SHA-256 (hex) of the canonical JSON of `{correlate, tokens}`: equal digests, equal policy. */
  digest: string;
}

/** The policy of a config, resolved with the correlator's defaults (what actually runs). */
export function policyAttrs(config: Pick<Config, 'tokens' | 'correlate'>): PolicyAttrs {
  const o = resolveCorrelatorOptions(correlatorOptionsFrom(config));
  const tokens = config.tokens.map((t) => ({
    kind: t.kind,
    key: t.key,
    maxTtlSeconds: t.maxTtlSeconds ?? null,
    requireProviderEvent: t.requireProviderEvent,
  }));
  const rules: PolicyCorrelate['rules'] = {};
  for (const rule of FINDING_RULES)
    rules[rule] = { enabled: o.rules[rule].enabled, severity: o.rules[rule].severity };
  const correlate: PolicyCorrelate = {
    revocationSlaSeconds: o.revocationSlaSeconds,
    ttlToleranceSeconds: o.ttlToleranceSeconds,
    revocationGraceSeconds: o.revocationGraceSeconds,
    revocationLookbackSeconds: o.revocationLookbackSeconds,
    refreshReuseSlaSeconds: o.refreshReuseSlaSeconds,
    rotationSlaSeconds: o.rotationSlaSeconds,
    rotationRequireSuccessor: o.rotationRequireSuccessor,
    attributionWindowSeconds: o.attributionWindowSeconds,
    revocationEventTypes: [...o.revocationEventTypes].sort(),
    rules,
  };
  const digest = createHash('sha256').update(canonicalJson({ correlate, tokens })).digest('hex');
  return { tokens, correlate, digest };
}

/** What the report judges TTLs and revocations by at one point of the ledger. */
export interface Policy {
  /** Seq of the `config.policy` record, or null for a policy given on the command line. */
  seq: number | null;
  time: number | null;
  /** Kind → maximum TTL in seconds; a kind without an entry (or null) has no maximum. */
  maxTtlSeconds: Readonly<Record<string, number | null>>;
  ttlToleranceSeconds: number;
  revocationSlaSeconds: number | null;
  /** Provider event types the correlator treats as revocations; null when not recorded. */
  revocationEventTypes: readonly string[] | null;
  digest: string | null;
}

/** A policy from a config file (`report --config`), applied to the whole period. */
export function policyFromConfig(config: Pick<Config, 'tokens' | 'correlate'>): Policy {
  return policyFromRecord(null, null, { ...policyAttrs(config) });
}

/**
 * Reads a `config.policy` record's attrs. Nothing in the database is trusted because of where it
 * is: a record counts only inside a range whose chain the integrity section verifies; malformed
 * fields read as "no maximum" / the correlator's default tolerance rather than throwing.
 */
export function policyFromRecord(
  seq: number | null,
  time: number | null,
  a: Record<string, unknown>,
): Policy {
  const max: Record<string, number | null> = {};
  for (const t of Array.isArray(a.tokens) ? (a.tokens as unknown[]) : []) {
    const rule = obj(t);
    if (typeof rule.kind !== 'string' || rule.kind in max) continue; // first rule of a kind wins
    max[rule.kind] =
      typeof rule.maxTtlSeconds === 'number' && rule.maxTtlSeconds > 0 ? rule.maxTtlSeconds : null;
  }
  const c = obj(a.correlate);
  return {
    seq,
    time,
    maxTtlSeconds: max,
    ttlToleranceSeconds:
      typeof c.ttlToleranceSeconds === 'number' && c.ttlToleranceSeconds >= 0
        ? c.ttlToleranceSeconds
        : 2,
    revocationSlaSeconds:
      typeof c.revocationSlaSeconds === 'number' ? c.revocationSlaSeconds : null,
    revocationEventTypes: Array.isArray(c.revocationEventTypes)
      ? c.revocationEventTypes.filter((t): t is string => typeof t === 'string')
      : null,
    digest: typeof a.digest === 'string' ? a.digest : null,
  };
}

const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** The last `config.policy` record before `beforeSeq`: the policy in force when a range starts. */
export function policyBefore(store: LedgerStore, beforeSeq: number): Policy | null {
  const r = store.lastOfType(POLICY_RECORD_TYPE, beforeSeq);
  return r ? policyFromRecord(r.seq, r.time, r.attrs) : null;
}
