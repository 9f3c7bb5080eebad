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
 * A batch decided but not yet hashed: its clock, every record in chain order (an
 * `audit.clock_skew` record in front when the clock went back), and the seq and clock its head
 * will have. Everything the chain hashes is fixed here, so whoever hashes it (this thread or the
 * writer thread) gets the same chain.
 */
export interface BatchPlan {
  clock: number;
  /** Records the ledger added in front of the batch, with their seqs. */
  extra: Committed[];
  /** Every record of the batch in chain order: `extra`, then the queued ones. */
  inputs: AuditInput[];
  /** Seq of the batch's last record. */
  seq: number;
  /** The clock the head keeps (see ChainHead.clock). */
  headClock: number;
}

/** The seal row of a batch head (SEAL_COLUMNS order). */
export function sealRow(
  ledgerId: string,
  key: SigningKey,
  seq: number,
  chain: Buffer,
  clock: number,
): unknown[] {
  return [seq, chain, clock, key.keyId, signSeal(ledgerId, seq, chain.toString('hex'), clock, key)];
}

/**
 * Hashes `inputs` after (`seq`, `chain`) into `rows` (which inserts them when it has a
 * connection) and returns the head. The one place a batch's records are chained, whichever
 * thread runs it.
 */
export function chainBatch(
  rows: RowWriter,
  after: { seq: number; chain: Buffer },
  clock: number,
  inputs: readonly AuditInput[],
): ReturnType<RowWriter['end']> {
  rows.begin(after.seq, after.chain, clock);
  for (const input of inputs) rows.add(input);
  return rows.end();
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
   * Decides the batch after `tip` (only its seq and clock matter): reads the clock, adds the
   * clock-skew record when the clock went back, and sets each queued record's seq.
   */
  plan(tip: Pick<ChainHead, 'seq' | 'clock'>, items: readonly Pending[]): BatchPlan {
    const clock = this.#o.now();
    const extra: Committed[] = [];
    const inputs: AuditInput[] = [];
    let seq = tip.seq;
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
      extra.push({ seq: ++seq, input });
      inputs.push(input);
    }
    for (const p of items) {
      p.seq = ++seq;
      inputs.push(p.input);
    }
    // High-water mark unless a jump was flagged: steps inside the tolerance cannot add up.
    const headClock = jumped || previous === undefined ? clock : Math.max(clock, previous);
    return { clock, extra, inputs, seq, headClock };
  }

  /** Hashes the rows after `tip` and inserts them (`rows` has the connection, inside the transaction). */
  encode(tip: ChainHead, items: Pending[], rows: RowWriter): Written {
    const plan = this.plan(tip, items);
    const { seq, chain } = chainBatch(rows, tip, plan.clock, plan.inputs);
    if (seq !== plan.seq) throw new Error(`batch chained to seq ${seq}, planned ${plan.seq}`);
    return this.written(plan, chain);
  }

  /**
   * The Written of a planned batch once its chain is known; with its seal row unless `sign` is
   * false (the writer thread signed and inserted it already).
   */
  written(plan: BatchPlan, chain: Buffer, sign = true): Written {
    // One signature per batch over its head: with the chain it covers every row of the batch
    // (and all before), so the cost is per commit, not per record.
    const key = sign ? this.#o.sealKey : undefined;
    return {
      seq: plan.seq,
      chain,
      clock: plan.headClock,
      extra: plan.extra,
      seal: key && sealRow(this.#o.ledgerId, key, plan.seq, chain, plan.clock),
    };
  }
}
