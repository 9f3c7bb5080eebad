import type { Tracing } from '../../telemetry/tracing.js';
import type { Logger } from 'pino';

import type { AuditInput, Committed } from '../../audit/record.js';
import type { DomainEvent } from '../../domain/domain-event.js';
import type { ProviderEvent } from '../../domain/provider-event.js';
import { TokenwatchError } from '../../errors.js';
import type { ProviderMetrics } from '../../metrics/provider-metrics.js';
import { type Via, eventAuditInput } from './audit-inputs.js';
import { type DedupReads, type SeenEvents, seenKey } from './seen-events.js';

/** What ingestion needs of the audit ledger (src/audit/ledger.ts). */
export interface IngestLedger {
  appendDurable(
    inputs: readonly AuditInput[],
    events?: readonly (DomainEvent | undefined)[],
  ): Promise<Committed[]>;
  append(input: AuditInput): void;
  /** The dedup look-ups on committed provider records. */
  readonly store: DedupReads;
  readonly lastSeq: number;
}

/** Called once per newly committed event, with the seq of its audit record. */
export type ProviderEventListener = (event: ProviderEvent, seq: number) => void;

/** What happened to a delivery's events. */
export interface IngestResult {
  /** Newly committed events. */
  recorded: number;
  /** Events already committed or in flight (redelivery, push + poll). */
  duplicates: number;
}

/** How a known (provider, id) is treated: redelivery is acknowledged, a replayed JWT refused. */
export type DuplicatePolicy = 'acknowledge' | 'reject';

interface Item {
  key: string;
  input: AuditInput;
  event?: ProviderEvent;
}

/** Collaborators of {@link EventIngest}. */
export interface EventIngestOptions {
  ledger: IngestLedger;
  seen: SeenEvents;
  metrics: ProviderMetrics;
  logger: Logger;
  now: () => number;
  /** Spans around webhook/poll deliveries (off: no cost). */
  tracing?: Tracing;
}

/**
 * The one path from normalised provider events to the audit ledger: deduplicate on
 * (provider, event id) against committed records and in-flight deliveries, commit durably, and
 * only then count, notify listeners and let the caller answer 2xx. Checking and marking happen
 * in one synchronous step, so two concurrent deliveries of one event cannot both record it.
 */
export class EventIngest {
  readonly #o: EventIngestOptions;
  /** In-flight commits by key: a duplicate waits for the original to know its fate. */
  readonly #pending = new Map<string, Promise<void>>();
  readonly #listeners = new Set<ProviderEventListener>();
  #rebuilt = false;

  constructor(options: EventIngestOptions) {
    this.#o = options;
  }

  /** Loads the seen-set from the ledger once (start-up, or the first delivery before it). */
  rebuild(): void {
    if (this.#rebuilt) return;
    this.#rebuilt = true;
    const n = this.#o.seen.rebuild(this.#o.ledger.store, this.#o.now());
    this.#o.logger.debug({ records: n }, 'provider dedup set rebuilt from the ledger');
  }

  /** Subscribes to committed events; returns the unsubscribe function. */
  onEvent(listener: ProviderEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Records `events` exactly once each. Resolves after every new record committed (and after
   * in-flight duplicates committed); rejects with ERR_AUDIT_DEGRADED when the ledger cannot
   * write (the provider retries), or ERR_WEBHOOK_REPLAY under the `reject` policy.
   */
  async ingest(
    events: readonly ProviderEvent[],
    via: Via,
    policy: DuplicatePolicy = 'acknowledge',
  ): Promise<IngestResult> {
    const run = (): Promise<IngestResult> =>
      this.#commit(
        events.map((event) => ({
          key: seenKey(event.provider, event.id),
          input: eventAuditInput(event, via),
          event,
        })),
        policy,
      );
    const tracing = this.#o.tracing;
    if (!tracing?.enabled) return run();
    return tracing.withSpan(
      'tokenwatch.webhook.ingest',
      { provider: events[0]?.provider ?? 'unknown', type: via, batch_size: events.length },
      run,
    );
  }

  /** Records one non-event marker (e.g. SSF stream verification) under the same dedup rules. */
  async record(
    provider: string,
    eventId: string,
    input: AuditInput,
    policy: DuplicatePolicy,
  ): Promise<IngestResult> {
    return this.#commit([{ key: seenKey(provider, eventId), input }], policy);
  }

  async #commit(items: readonly Item[], policy: DuplicatePolicy): Promise<IngestResult> {
    this.rebuild();
    const { seen, ledger, metrics } = this.#o;
    const fresh: Item[] = [];
    const batchKeys = new Set<string>();
    const waits: Promise<void>[] = [];
    const dupProviders: string[] = [];
    for (const item of items) {
      const inFlight = this.#pending.get(item.key);
      if (seen.has(item.key) || inFlight || batchKeys.has(item.key)) {
        if (policy === 'reject') throw replayError();
        if (inFlight) waits.push(inFlight);
        dupProviders.push(item.key.slice(0, item.key.indexOf('\u0000')));
        continue;
      }
      batchKeys.add(item.key);
      fresh.push(item);
    }

    let committed: Committed[] = [];
    if (fresh.length > 0) {
      let settle!: (err?: Error) => void;
      const done = new Promise<void>((resolve, reject) => {
        settle = (err) => (err === undefined ? resolve() : reject(err));
      });
      done.catch(() => undefined); // observed by duplicates only; never an unhandled rejection
      for (const item of fresh) this.#pending.set(item.key, done);
      const before = ledger.lastSeq;
      try {
        committed = await ledger.appendDurable(
          fresh.map((i) => i.input),
          // The events ride to the ledger's committed channel (the correlator, cache health).
          fresh.map((i) => i.event && { type: 'provider', event: i.event }),
        );
      } catch (err) {
        for (const item of fresh) this.#pending.delete(item.key);
        this.#recoverPartial(before);
        settle(err as Error);
        throw err;
      }
      for (const item of fresh) {
        seen.add(item.key);
        this.#pending.delete(item.key);
      }
      settle();
    }
    if (waits.length > 0) await Promise.all(waits);

    for (const p of dupProviders) metrics.duplicates.inc({ provider: p });
    this.#afterCommit(fresh, committed);
    return { recorded: fresh.length, duplicates: dupProviders.length };
  }

  /** A batch larger than the ledger's batch size may have committed in part before failing. */
  #recoverPartial(beforeSeq: number): void {
    try {
      if (this.#o.ledger.lastSeq > beforeSeq) {
        this.#o.seen.addCommittedAfter(this.#o.ledger.store, beforeSeq);
      }
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, 'could not re-read committed records');
    }
  }

  #afterCommit(items: readonly Item[], committed: readonly Committed[]): void {
    const { metrics, logger } = this.#o;
    items.forEach((item, i) => {
      const ev = item.event;
      if (!ev) return;
      metrics.events.inc({ provider: ev.provider, type: ev.type, outcome: ev.outcome });
      metrics.eventLag.observe(
        { provider: ev.provider },
        Math.max(0, ev.observedAt - ev.occurredAt) / 1000,
      );
      const seq = committed[i]?.seq;
      if (seq === undefined) return;
      for (const listener of this.#listeners) {
        try {
          listener(ev, seq);
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'provider event listener failed');
        }
      }
    });
  }
}

export function replayError(): TokenwatchError {
  return new TokenwatchError('ERR_WEBHOOK_REPLAY', 'token already received (replay)', {
    details: { reason: 'replay' },
  });
}
