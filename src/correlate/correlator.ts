import type { Finding } from '../domain/finding.js';
import type { ProviderEvent } from '../domain/provider-event.js';
import type { TokenEvent } from '../domain/token-event.js';
import { BoundedMap } from './bounded-map.js';
import { EvictionBursts } from './eviction-bursts.js';
import { FindingBook } from './finding-book.js';
import { GraceWindows } from './late-tokens.js';
import { resolveCorrelatorOptions } from './options.js';
import type { CorrelatorOptions, ResolvedCorrelatorOptions } from './options.js';
import { effectiveAt, revocationScope } from './revocation-scope.js';
import { RestoredTokens } from './restored-tokens.js';
import { PropagationTracker } from './revocations.js';
import { RotationFamilies } from './rotation-families.js';
import { AttributionRule, ISSUANCE_TYPES } from './rules/attribution.js';
import { ChurnSpikeRule } from './rules/churn-spike.js';
import { OrphanedIndexRule, type IndexObservation } from './rules/orphaned-index.js';
import { TokenPolicyRule } from './rules/token-policy.js';
import { WriteAfterRevocationRule } from './rules/write-after-revocation.js';
import { NO_OPEN, setOpen } from './token-store.js';
import type { TokenFindingRule, TokenRecord } from './token-store.js';
import { SNAPSHOT_VERSION, snapshotEnvelope } from './snapshot.js';
import type { CorrelatorSnapshot } from './snapshot.js';
import { TokenView } from './token-view.js';
import type { Clock, CorrelatorObservations, CorrelatorStats, RevocationLatency } from './types.js';

const TOKEN_FINDING_RULES: ReadonlySet<string> = new Set<TokenFindingRule>([
  'token_without_expiry',
  'ttl_exceeds_policy',
  'unattributed_token',
  'write_after_revocation',
]);

/** Collaborators of the correlator. */
export interface CorrelatorDeps {
  clock: Clock;
}

/**
 * The pure correlation engine: TokenEvents (Redis) and ProviderEvents (IdP) in, Findings out.
 * No I/O, no timers, no wall clock: time comes from the injected clock, SLA deadlines and
 * windows are judged in `tick()`, and every structure is capped. Returned findings are state
 * changes: an `opened` record, later the same `id` as `resolved`.
 */
export class Correlator {
  readonly options: ResolvedCorrelatorOptions;
  readonly #clock: Clock;
  readonly #book: FindingBook;
  readonly #view: TokenView;
  readonly #seen: BoundedMap<string, true>;
  readonly #families: RotationFamilies;
  readonly #propagation: PropagationTracker;
  readonly #policy: TokenPolicyRule;
  readonly #attribution: AttributionRule;
  readonly #afterRevocation: WriteAfterRevocationRule;
  readonly #evictions: EvictionBursts;
  readonly #churn: ChurnSpikeRule;
  readonly #restored = new RestoredTokens();
  readonly #orphans: OrphanedIndexRule;
  readonly #grace: GraceWindows;
  #observations: RevocationLatency[] = [];
  #observationsDropped = 0;
  #duplicates = 0;

  /** @throws ConfigError (ERR_CONFIG_INVALID) on invalid options. */
  constructor(options: CorrelatorOptions, deps: CorrelatorDeps) {
    const opts = resolveCorrelatorOptions(options);
    this.options = opts;
    this.#clock = deps.clock;
    this.#book = new FindingBook(opts);
    // A token the view's cap pushes out matters only to an obligation waiting on it by id (or
    // through its open findings, which the store checks itself): the tracker's index says.
    this.#view = new TokenView(opts, () => this.#propagation.trackedTokens > 0);
    this.#seen = new BoundedMap(opts.limits.maxSeenProviderEvents);
    this.#families = new RotationFamilies(opts.limits.maxRotationFamilies);
    this.#propagation = new PropagationTracker(opts, this.#book, (o) => this.#observe(o));
    this.#policy = new TokenPolicyRule(opts, this.#book);
    this.#attribution = new AttributionRule(opts, this.#book, this.#view);
    this.#afterRevocation = new WriteAfterRevocationRule(opts, this.#book);
    this.#evictions = new EvictionBursts(opts, this.#book);
    this.#churn = new ChurnSpikeRule(opts, this.#book);
    this.#orphans = new OrphanedIndexRule(this.#book);
    this.#grace = new GraceWindows(opts.limits.maxPendingObligations);
  }

  /** Results of an index reconciliation (index entries that outlive their tokens). */
  onIndexObservations(observations: readonly IndexObservation[], evidenceSeq?: number): Finding[] {
    return this.#orphans.observe(observations, this.#clock.now(), evidenceSeq);
  }

  /** Applies one Redis token event; `evidenceSeq` is its audit seq, cited by findings. */
  onTokenEvent(ev: TokenEvent, evidenceSeq?: number): Finding[] {
    const now = this.#clock.now();
    const out: Finding[] = [];
    if (this.#restored.size > 0) this.#restored.seen(ev);
    this.#churn.record(ev, evidenceSeq);
    const change = this.#view.apply(ev, evidenceSeq);
    for (const rec of change.lost) this.#tokenGone(rec, now, true, out);
    if (change.ended) this.#tokenGone(change.ended, now, false, out);
    if (change.moved) {
      this.#propagation.move(change.moved.from, change.moved.to);
      this.#attribution.move(change.moved.from, change.moved.to);
    }
    const rec = change.token;
    if (rec) {
      out.push(...this.#policy.evaluate(rec, ev, evidenceSeq, now));
      if (change.isWrite) {
        if (change.isNew) this.#attribution.onWrite(rec, evidenceSeq);
        out.push(...this.#afterRevocation.onWrite(rec, evidenceSeq, now));
        out.push(...this.#propagation.onTokenWritten(rec, evidenceSeq, now));
        if (change.isNew && this.#grace.size > 0)
          out.push(...this.#joinLate(rec, evidenceSeq, now));
      }
    }
    if (ev.type === 'evicted') out.push(...this.#evictions.record(ev, evidenceSeq, now));
    return out;
  }

  /**
   * Applies one provider event. Duplicates (same provider + id, e.g. a webhook retried or
   * also seen by polling) are dropped so nothing is counted twice.
   */
  onProviderEvent(ev: ProviderEvent, evidenceSeq?: number): Finding[] {
    const key = `${ev.provider}:${ev.id}`;
    if (this.#seen.has(key)) {
      this.#duplicates++;
      return [];
    }
    this.#seen.set(key, true);
    const now = this.#clock.now();
    const out: Finding[] = [];
    const effective = ev.outcome !== 'failure';
    if (ev.type === 'token_refreshed' && ev.rotation && effective) this.#families.link(ev.rotation);
    if (ISSUANCE_TYPES.has(ev.type) && effective)
      out.push(...this.#attribution.onIssuance(ev, evidenceSeq, now));
    if (this.options.revocationEventTypes.has(ev.type) && effective)
      out.push(...this.#revoke(ev, evidenceSeq, now));
    // A reuse detection matters whatever its outcome: "failure" usually means the reused token was rejected.
    if (ev.type === 'refresh_reuse_detected') out.push(...this.#reuse(ev, evidenceSeq, now));
    if (ev.type === 'token_refreshed' && ev.rotation && effective)
      out.push(...this.#rotate(ev, evidenceSeq, now));
    return out;
  }

  /** Judges deadlines, windows, bursts and churn buckets; call about once a second. */
  tick(): Finding[] {
    const now = this.#clock.now();
    const out = [
      ...this.#propagation.tick(now),
      ...this.#attribution.tick(now),
      ...this.#evictions.tick(now),
      ...this.#churn.tick(now),
    ];
    this.#view.expire(now);
    this.#afterRevocation.expire(now);
    this.#grace.expire(now, this.options.revocationGraceSeconds * 1000);
    return out;
  }

  /**
   * Everything that must survive a restart, as plain JSON-safe data (see CorrelatorSnapshot).
   * Sections that can grow large are capped at `limits.maxSnapshotEntries` (newest kept).
   */
  snapshot(): CorrelatorSnapshot {
    const now = this.#clock.now();
    const max = this.options.limits.maxSnapshotEntries;
    const truncated: Record<string, number> = {};
    const attribution = this.#attribution.snapshot(max, truncated);
    const keep = new Set(attribution.tokenIds);
    const view = this.#view.snapshot(keep, now, max, truncated);
    return {
      version: SNAPSHOT_VERSION,
      takenAt: now,
      findings: this.#book.list(),
      tokens: view.tokens,
      ended: view.ended,
      obligations: this.#propagation.snapshot(),
      families: this.#families.snapshot(max, truncated),
      revoked: this.#afterRevocation.snapshot(now, max, truncated),
      attribution: { issuances: attribution.issuances, pending: attribution.pending },
      evictions: this.#evictions.snapshot(),
      churn: this.#churn.snapshot(),
      truncated,
    };
  }

  /**
   * A correlator holding the state of `raw` (a `snapshot()` read back from the ledger). Builds a
   * new instance so that a snapshot failing validation half-way leaves nothing half-restored.
   * @throws TokenwatchError ERR_SNAPSHOT_INVALID when `raw` is not a snapshot this version takes.
   */
  static fromSnapshot(options: CorrelatorOptions, deps: CorrelatorDeps, raw: unknown): Correlator {
    const c = new Correlator(options, deps);
    const o = snapshotEnvelope(raw);
    c.#book.restore(o.findings, 'findings');
    c.#view.restore(o.tokens, o.ended, 'view');
    c.#propagation.restore(o.obligations, 'obligations');
    c.#families.restore(o.families, 'families');
    c.#afterRevocation.restore(o.revoked, 'revoked');
    c.#attribution.restore(o.attribution, 'attribution');
    c.#evictions.restore(o.evictions, 'evictions');
    c.#churn.restore(o.churn, 'churn');
    for (const r of c.#view.live.values()) c.#restored.add(r.id);
    for (const id of c.#propagation.pendingTokenIds()) c.#restored.add(id);
    return c;
  }

  /**
   * The start-up baseline SCAN of `node` has reported every token it found (as events, which
   * confirm the restored tokens they name). A restored token it did not find left Redis while
   * tokenwatch was down, at an unknown time: it ends as `vanished` (its findings resolve), and
   * an obligation waiting for it completes with an unknown latency, which counts as a breach
   * rather than a guess (CC6.2 evidence must not overstate).
   */
  baselineDone(node: string): Finding[] {
    const out: Finding[] = [];
    const now = this.#clock.now();
    for (const t of this.#restored.take(node)) {
      const gone = { id: t.id, endedAt: now, endSeq: undefined };
      out.push(...this.#propagation.onTokenLeft(gone, now, true));
      const ev: TokenEvent = {
        type: 'vanished',
        kind: t.kind,
        fingerprint: t.fingerprint,
        keyAttrs: {},
        node: t.node,
        db: t.db,
        observedAt: now,
        redisEvent: 'reconcile',
      };
      out.push(...this.onTokenEvent(ev));
    }
    return out;
  }

  /**
   * Call once after a restore (and replay) and before live events: the time since the last
   * observed event was a blind spot, which churn baselines must not learn as silence. Deadlines
   * that passed meanwhile are judged by the next `tick()`.
   */
  resume(): void {
    this.#churn.resume(this.#clock.now());
  }

  /**
   * Replay support (see FindingsService): reuse the ids of findings already recorded, take one
   * recorded open that replay did not re-derive, or drop one recorded resolved.
   */
  readonly findings = {
    expect: (recorded: readonly Finding[] | undefined): void => this.#book.expect(recorded),
    forget: (id: string): boolean => this.#book.forget(id),
    adopt: (f: Finding): void => {
      this.#book.adopt(f);
      const rule = f.rule as TokenFindingRule;
      if (!TOKEN_FINDING_RULES.has(rule) || f.fingerprint === undefined) return;
      // Tie a per-token finding to its token again so that the token leaving resolves it.
      for (const rec of this.#view.live.withFingerprint(f.fingerprint))
        if (rec.kind === f.kind && rec.open[rule] === undefined) setOpen(rec, rule, f.id);
    },
  };

  /** Snapshots of the findings currently open, with their latest counts. */
  openFindings(): Finding[] {
    return this.#book.list();
  }

  /** Returns and clears the observations gathered since the last call. */
  drainObservations(): CorrelatorObservations {
    const revocations = this.#observations;
    this.#observations = [];
    return { revocations };
  }

  stats(): CorrelatorStats {
    const live = this.#view.live.sizes();
    const revoked = this.#afterRevocation.sizes;
    const attribution = this.#attribution.sizes;
    const families = this.#families.sizes;
    return {
      sizes: {
        liveTokens: live.tokens,
        endedTokens: this.#view.ended.size,
        tokenIdIndex: live.tokenIdIndex,
        sessionIndex: live.sessionIndex,
        subjectClientIndex: live.subjectClientIndex,
        subjectIndex: live.subjectIndex,
        familyIndex: live.familyIndex,
        pendingObligations: this.#propagation.size,
        obligationTokens: this.#propagation.trackedTokens,
        revokedTokenIds: revoked.tokenIds,
        revokedSessions: revoked.sessions,
        revokedSubjects: revoked.subjects,
        recentIssuances: attribution.issuances,
        pendingAttributions: attribution.pending,
        seenProviderEvents: this.#seen.size,
        rotationFamilies: families.families,
        rotationFamilyTokenIds: families.tokenIds,
        churnKinds: this.#churn.size,
        evictionKinds: this.#evictions.size,
        openFindings: this.#book.size,
        bufferedObservations: this.#observations.length,
      },
      evictions: {
        liveTokens: this.#view.live.evictions,
        endedTokens: this.#view.ended.evictions,
        pendingObligations: this.#propagation.evictions,
        revocationMemory: this.#afterRevocation.evictions,
        recentIssuances: this.#attribution.evictions.issuances,
        pendingAttributions: this.#attribution.evictions.pending,
        seenProviderEvents: this.#seen.evictions,
        rotationFamilies: this.#families.evictions,
        churnKinds: this.#churn.evictions,
        evictionKinds: this.#evictions.evictions,
        observations: this.#observationsDropped,
      },
      duplicateProviderEvents: this.#duplicates,
      suppressedFindings: this.#book.suppressed,
    };
  }

  #revoke(ev: ProviderEvent, seq: number | undefined, now: number): Finding[] {
    const scope = revocationScope(ev, this.options);
    if (!scope) return [];
    const revokedAt = effectiveAt(ev);
    const out = this.#afterRevocation.onRevocation(
      ev,
      scope.remember,
      revokedAt,
      seq,
      now,
      this.#view.live,
    );
    // Tokens first seen after the revocation are new grants (or rule 5's business), not this
    // revocation's; tokens known only from reconciliation have no write time and count.
    const cutoff = revokedAt + this.options.revocationGraceSeconds * 1000;
    const before = (r: TokenRecord) => !r.writeSeen || r.firstSeenAt <= cutoff;
    const live = this.#view.live.find(scope.query).filter(before);
    const ended = this.#endedFor(scope.query, live, now).filter(before);
    out.push(
      ...this.#propagation.start(
        {
          kind: 'revocation',
          ev,
          seq,
          revokedAt,
          slaSeconds: this.options.revocationSlaSeconds,
          live,
          ended,
        },
        now,
      ),
    );
    this.#grace.add({
      ev,
      seq,
      revokedAt,
      cutoff,
      query: scope.query,
      tracked: this.#propagation.tracking('revocation', ev),
    });
    return out;
  }

  /** A new token first seen within a revocation's grace window that it matches joins it. */
  #joinLate(rec: TokenRecord, seq: number | undefined, now: number): Finding[] {
    const out: Finding[] = [];
    for (const w of this.#grace.covering(rec.firstSeenAt)) {
      // Completed already (every token it matched left): its latency is reported, keep it so.
      if (w.tracked && !this.#propagation.tracking('revocation', w.ev)) continue;
      if (!this.#view.live.find(w.query).some((r) => r.id === rec.id)) continue;
      w.tracked = true;
      const input = {
        kind: 'revocation' as const,
        ev: w.ev,
        seq: w.seq,
        revokedAt: w.revokedAt,
        slaSeconds: this.options.revocationSlaSeconds,
      };
      out.push(...this.#propagation.joinLate(input, rec, seq, now));
    }
    return out;
  }

  #reuse(ev: ProviderEvent, seq: number | undefined, now: number): Finding[] {
    const r = ev.rotation;
    const ids = this.#families.expand(
      [...ev.tokenIds, ...(r?.previous ?? []), ...(r?.next ?? [])],
      r?.familyId,
    );
    const revokedAt = effectiveAt(ev);
    const remember = { tokenIds: ids, sessionId: undefined, subject: undefined };
    const out = this.#afterRevocation.onRevocation(
      ev,
      remember,
      revokedAt,
      seq,
      now,
      this.#view.live,
    );
    const query = { tokenIds: ids, sessionId: ev.sessionId, familyId: r?.familyId };
    const live = this.#view.live.find(query);
    const ended = this.#endedFor(query, live, now);
    const slaSeconds = this.options.refreshReuseSlaSeconds;
    out.push(
      ...this.#propagation.start(
        { kind: 'refresh_reuse', ev, seq, revokedAt, slaSeconds, live, ended, watchIds: ids },
        now,
      ),
    );
    return out;
  }

  #rotate(ev: ProviderEvent, seq: number | undefined, now: number): Finding[] {
    const previous = ev.rotation?.previous ?? [];
    const next = ev.rotation?.next ?? [];
    if (previous.length === 0) return [];
    // A key that already carries a successor id was updated in place: not a stale predecessor.
    const live = this.#view.live
      .find({ tokenIds: previous })
      .filter((r) => !next.some((n) => r.joins.tokenIds.includes(n)));
    const ended = this.#endedFor({ tokenIds: previous }, live, now);
    const successorSeen =
      next.length > 0 &&
      (this.#view.live.find({ tokenIds: next }).length > 0 ||
        this.#view.ended.find({ tokenIds: next }).length > 0);
    return this.#propagation.start(
      {
        kind: 'rotation',
        ev,
        seq,
        revokedAt: effectiveAt(ev),
        slaSeconds: this.options.rotationSlaSeconds,
        live,
        ended,
        watchIds: next,
        successorExpected:
          this.options.rotationRequireSuccessor &&
          live.length + ended.length > 0 &&
          next.length > 0,
        successorSeen,
      },
      now,
    );
  }

  /** Matching tokens that left Redis within the lookback before the event reached us. */
  #endedFor(
    query: Parameters<TokenView['ended']['find']>[0],
    live: readonly TokenRecord[],
    now: number,
  ): TokenRecord[] {
    const horizon = now - this.options.revocationLookbackSeconds * 1000;
    const liveIds = new Set(live.map((r) => r.id));
    return this.#view.ended
      .find(query)
      .filter((r) => (r.endedAt ?? 0) >= horizon && !liveIds.has(r.id));
  }

  /** A token left Redis (or, `lost`, the bounded view): close what was waiting on it. */
  #tokenGone(rec: TokenRecord, now: number, lost: boolean, out: Finding[]): void {
    const resolution = lost ? 'tracking_lost' : 'left_redis';
    const why = lost
      ? 'tokenwatch stopped tracking the token (live-view cap reached)'
      : `the token left Redis (${rec.endType ?? 'ended'})`;
    for (const rule of Object.keys(rec.open) as TokenFindingRule[]) {
      const f = this.#book.resolve(
        rec.open[rule],
        now,
        (o) => `${o.summary} Resolved: ${why}.`,
        {
          resolution,
          endType: rec.endType ?? null,
        },
        [rec.endSeq],
      );
      if (f) out.push(f);
    }
    rec.open = NO_OPEN;
    out.push(...this.#propagation.onTokenLeft(rec, now, lost));
  }

  #observe(o: RevocationLatency): void {
    if (this.#observations.length >= this.options.limits.maxBufferedObservations) {
      this.#observations.shift();
      this.#observationsDropped++;
    }
    this.#observations.push(o);
  }
}
