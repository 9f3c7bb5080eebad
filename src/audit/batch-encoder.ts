import type { ChainHead } from './chain-head.js';
import type { Pending } from './commit-queue.js';
import type { Written } from './committer.js';
import type { AuditInput, Committed } from './record.js';
import type { RowWriter } from './row-writer.js';
import { signSeal } from './seal.js';
import type { SigningKey } from './signing-keys.js';

export interface BatchEncoderOptions {
  ledgerId: string;
  now: () => number;
  /** A clock reading earlier than the tip's by more than this (ms) opens the batch with a record. */
  skewToleranceMs: number;
  /** Signs the head of every batch (docs/ledger-format.md#batch-seals), when given. */
  sealKey: SigningKey | undefined;
}

/**
 * Turns a batch of queued records into rows chained after a head: reads the clock once per
 * batch, states a backwards clock jump in the chain, and signs the batch head. Sets each
 * record's seq; leaves the head itself to the caller.
 */
export class BatchEncoder {
  readonly #o: BatchEncoderOptions;

  constructor(opts: BatchEncoderOptions) {
    this.#o = opts;
  }

  /**
   * Hashes the rows after `tip` and inserts them (`rows` with a connection, inside the
   * transaction) or returns them encoded (the writer thread's encoder).
   */
  encode(tip: ChainHead, items: Pending[], rows: RowWriter): Written {
    const clock = this.#o.now();
    const extra: Committed[] = [];
    rows.begin(tip.seq, tip.chain, clock);
    const previous = tip.clock;
    const jumped = previous !== undefined && clock < previous - this.#o.skewToleranceMs;
    if (jumped) {
      // Seq stays authoritative; the jump is stated in the chain so an auditor sees why record
      // times go backwards here (SOC 2 CC7.2 looks for gaps in sequence or time).
      const input: AuditInput = {
        time: clock,
        source: 'system',
        type: 'audit.clock_skew',
        attrs: {
          previousClock: previous,
          clock,
          backwardsMs: previous - clock,
          afterSeq: tip.seq,
        },
      };
      extra.push({ seq: rows.add(input), input });
    }
    for (const p of items) p.seq = rows.add(p.input);
    const { seq, chain, args } = rows.end();
    // One signature per batch over its head: with the chain it covers every row of the batch
    // (and all before), so the cost is per commit, not per record.
    const key = this.#o.sealKey;
    const seal = key && [
      seq,
      chain,
      clock,
      key.keyId,
      signSeal(this.#o.ledgerId, seq, chain.toString('hex'), clock, key),
    ];
    // High-water mark unless a jump was flagged: steps inside the tolerance cannot add up.
    return {
      seq,
      chain,
      clock: jumped || previous === undefined ? clock : Math.max(clock, previous),
      extra,
      args,
      seal,
    };
  }
}
