import { FINDING_RULES } from '../domain/finding.js';
import type { Criterion, Finding, FindingRule, Severity } from '../domain/finding.js';
import type { ResolvedCorrelatorOptions } from './options.js';
import { arr, int, num, obj, oneOf, optStr, str } from './snapshot-read.js';

export type FindingAttributes = Finding['attributes'];

/** What a rule supplies to open a finding; severity and criteria come from the options. */
export interface FindingSpec {
  rule: FindingRule;
  /** Stable part of the id: fingerprint, kind or provider event key (never a secret). */
  key: string;
  summary: string;
  kind?: string | undefined;
  fingerprint?: string | undefined;
  subject?: string | undefined;
  sessionId?: string | undefined;
  evidence?: readonly (number | undefined)[];
  attributes: FindingAttributes;
}

function snapshot(f: Finding): Finding {
  return {
    ...f,
    criteria: [...f.criteria],
    evidenceSeqs: [...f.evidenceSeqs],
    attributes: { ...f.attributes },
  };
}

/**
 * The open findings. Returns snapshots (the records a caller persists are immutable); ids are
 * deterministic `${rule}:${key}:${openedAt}`, suffixed only when that exact id was already issued
 * in the same millisecond.
 */
export class FindingBook {
  readonly #opts: ResolvedCorrelatorOptions;
  readonly #open = new Map<string, Finding>();
  readonly #perRule = new Map<FindingRule, number>();
  #idsAt = Number.NaN;
  readonly #idsIssued = new Set<string>();
  #suppressed = 0;
  /** While replaying the ledger: ids already recorded per `rule:key`, oldest first. */
  #expected: Map<string, { id: string; openedAt: number }[]> | undefined;

  constructor(opts: ResolvedCorrelatorOptions) {
    this.#opts = opts;
  }

  get size(): number {
    return this.#open.size;
  }

  get suppressed(): number {
    return this.#suppressed;
  }

  enabled(rule: FindingRule): boolean {
    return this.#opts.rules[rule].enabled;
  }

  /** Opens a finding; undefined when its rule is disabled or at its open-findings cap. */
  open(spec: FindingSpec, at: number): Finding | undefined {
    const settings = this.#opts.rules[spec.rule];
    if (!settings.enabled) return undefined;
    const count = this.#perRule.get(spec.rule) ?? 0;
    if (count >= this.#opts.limits.maxOpenFindingsPerRule) {
      this.#suppressed++;
      return undefined;
    }
    const base = `${spec.rule}:${spec.key}`;
    const recorded = this.#expected?.get(base)?.shift();
    const reuse = recorded !== undefined && !this.#open.has(recorded.id);
    const f: Finding = {
      id: reuse ? recorded.id : this.#issueId(`${base}:${at}`, at),
      rule: spec.rule,
      state: 'opened',
      severity: settings.severity,
      criteria: [...settings.criteria],
      at: reuse ? recorded.openedAt : at,
      openedAt: reuse ? recorded.openedAt : at,
      summary: spec.summary,
      evidenceSeqs: [],
      attributes: { ...spec.attributes },
    };
    if (spec.kind !== undefined) f.kind = spec.kind;
    if (spec.fingerprint !== undefined) f.fingerprint = spec.fingerprint;
    if (spec.subject !== undefined) f.subject = spec.subject;
    if (spec.sessionId !== undefined) f.sessionId = spec.sessionId;
    this.#pushEvidence(f, spec.evidence ?? []);
    this.#open.set(f.id, f);
    this.#perRule.set(spec.rule, count + 1);
    return snapshot(f);
  }

  isOpen(id: string | undefined): id is string {
    return id !== undefined && this.#open.has(id);
  }

  /** Updates an open finding in place (visible through `list()`); no state change is emitted. */
  update(
    id: string,
    attributes: FindingAttributes,
    evidence: readonly (number | undefined)[] = [],
  ): void {
    const f = this.#open.get(id);
    if (!f) return;
    Object.assign(f.attributes, attributes);
    this.#pushEvidence(f, evidence);
  }

  /** Closes an open finding and returns its `resolved` record; undefined when not open. */
  resolve(
    id: string | undefined,
    at: number,
    summary: string | ((opened: Finding) => string),
    attributes: FindingAttributes,
    evidence: readonly (number | undefined)[] = [],
  ): Finding | undefined {
    const f = id === undefined ? undefined : this.#open.get(id);
    if (!f) return undefined;
    this.#open.delete(f.id);
    this.#perRule.set(f.rule, (this.#perRule.get(f.rule) ?? 1) - 1);
    this.#pushEvidence(f, evidence);
    const out = snapshot(f);
    out.state = 'resolved';
    out.at = at;
    out.summary = typeof summary === 'string' ? summary : summary(f);
    Object.assign(out.attributes, attributes);
    return out;
  }

  list(): Finding[] {
    return [...this.#open.values()].map(snapshot);
  }

  get(id: string): Finding | undefined {
    const f = this.#open.get(id);
    return f && snapshot(f);
  }

  /**
   * Takes an open finding as it was recorded (restore from a snapshot, or an `opened` record in
   * the ledger that replay did not reproduce). Counts against its rule's cap like any other.
   */
  adopt(f: Finding): void {
    if (this.#open.has(f.id)) return;
    this.#open.set(f.id, snapshot({ ...f, state: 'opened' }));
    this.#perRule.set(f.rule, (this.#perRule.get(f.rule) ?? 0) + 1);
  }

  /**
   * Replay of the ledger after a snapshot: a finding re-derived from the replayed events opens a
   * few ms apart from the original run, so its generated id would differ from the one already
   * recorded (and sent to Alertmanager). While `recorded` is set, opening a finding of the same
   * rule and key takes the recorded id and opening time instead; `undefined` ends it.
   */
  expect(recorded: readonly Pick<Finding, 'id' | 'openedAt'>[] | undefined): void {
    if (!recorded) {
      this.#expected = undefined;
      return;
    }
    this.#expected = new Map();
    for (const f of recorded) {
      const base = findingBase(f.id);
      const list = this.#expected.get(base) ?? [];
      list.push({ id: f.id, openedAt: f.openedAt });
      this.#expected.set(base, list);
    }
  }

  /** Drops an open finding without a state change (the ledger already records it resolved). */
  forget(id: string): boolean {
    const f = this.#open.get(id);
    if (!f) return false;
    this.#open.delete(id);
    this.#perRule.set(f.rule, (this.#perRule.get(f.rule) ?? 1) - 1);
    return true;
  }

  /** @throws TokenwatchError ERR_SNAPSHOT_INVALID */
  restore(raw: unknown, path: string): void {
    const max = this.#opts.limits.maxOpenFindingsPerRule * FINDING_RULES.length;
    for (const [i, v] of arr(raw, path, max).entries())
      this.adopt(parseFinding(v, `${path}[${i}]`));
  }

  #pushEvidence(f: Finding, seqs: readonly (number | undefined)[]): void {
    const cap = this.#opts.limits.maxEvidenceSeqs;
    for (const s of seqs) {
      if (f.evidenceSeqs.length >= cap) return;
      if (s !== undefined && !f.evidenceSeqs.includes(s)) f.evidenceSeqs.push(s);
    }
  }

  #issueId(base: string, at: number): string {
    if (at !== this.#idsAt) {
      this.#idsAt = at;
      this.#idsIssued.clear();
    }
    let id = base;
    for (let n = 2; this.#idsIssued.has(id); n++) id = `${base}#${n}`;
    this.#idsIssued.add(id);
    return id;
  }
}

/** `rule:key` of a finding id `rule:key:openedAt[#n]` (keys may contain ':'). */
export function findingBase(id: string): string {
  const plain = id.replace(/#\d+$/, '');
  return plain.slice(0, Math.max(0, plain.lastIndexOf(':')));
}

const SEVERITIES: readonly Severity[] = ['info', 'low', 'medium', 'high', 'critical'];
const CRITERIA: readonly Criterion[] = [
  'CC6.1',
  'CC6.2',
  'CC6.3',
  'CC7.2',
  'CC7.3',
  'CC7.4',
  'A1.2',
];
const MAX_ATTRIBUTES = 64;

/** A finding from untrusted plain data (snapshot or ledger record), checked field by field. */
export function parseFinding(v: unknown, path: string): Finding {
  const o = obj(v, path);
  const f: Finding = {
    id: str(o.id, `${path}.id`, 1024),
    rule: oneOf(o.rule, `${path}.rule`, FINDING_RULES),
    state: oneOf(o.state, `${path}.state`, ['opened', 'resolved'] as const),
    severity: oneOf(o.severity, `${path}.severity`, SEVERITIES),
    criteria: arr(o.criteria, `${path}.criteria`, CRITERIA.length).map((c, i) =>
      oneOf(c, `${path}.criteria[${i}]`, CRITERIA),
    ),
    at: num(o.at, `${path}.at`),
    openedAt: num(o.openedAt, `${path}.openedAt`),
    summary: str(o.summary, `${path}.summary`),
    evidenceSeqs: arr(o.evidenceSeqs, `${path}.evidenceSeqs`, 1000).map((s, i) =>
      int(s, `${path}.evidenceSeqs[${i}]`, 1),
    ),
    attributes: {},
  };
  const attrs = obj(o.attributes, `${path}.attributes`);
  const entries = Object.entries(attrs);
  if (entries.length > MAX_ATTRIBUTES) arr(entries, `${path}.attributes`, MAX_ATTRIBUTES); // throws with the count
  for (const [k, a] of entries) {
    if (a === null || typeof a === 'boolean' || (typeof a === 'number' && Number.isFinite(a)))
      f.attributes[k] = a;
    else f.attributes[k] = str(a, `${path}.attributes.${k}`);
  }
  for (const k of ['kind', 'fingerprint', 'subject', 'sessionId'] as const) {
    const x = optStr(o[k], `${path}.${k}`);
    if (x !== undefined) f[k] = x;
  }
  return f;
}
