import type { DomainEvent } from '../domain/domain-event.js';
import type { AuditInput, Committed } from './record.js';

/** A record waiting for its batch; `seq` is set when the batch is encoded. */
export interface Pending {
  input: AuditInput;
  seq: number;
  waiter?: Waiter;
  event?: DomainEvent;
  /** A token record tokenInput() made (Ledger.appendToken): it goes as columns (token-record.ts). */
  token?: true;
}

/** A durable append (`appendDurable`): resolves once every one of its records committed. */
export interface Waiter {
  remaining: number;
  items: Pending[];
  resolve: (c: Committed[]) => void;
  reject: (e: Error) => void;
}

export function committedOf(p: Pending): Committed {
  return p.event ? { seq: p.seq, input: p.input, event: p.event } : { seq: p.seq, input: p.input };
}

/**
 * The ledger's records not yet handed to a committer, in append order. A batch that failed goes
 * back to the front (its seqs are reassigned when it is encoded again).
 */
export class CommitQueue {
  #items: Pending[] = [];

  get length(): number {
    return this.#items.length;
  }

  push(p: Pending): void {
    this.#items.push(p);
  }

  /** The first `n` records, left in the queue (they leave once they committed). */
  peek(n: number): Pending[] {
    return this.#items.slice(0, n);
  }

  /** Removes the first `n` records (after they committed). */
  remove(n: number): void {
    this.#items.splice(0, n);
  }

  /** Removes and returns the first `n` records (handed to the writer thread). */
  take(n: number): Pending[] {
    return this.#items.splice(0, n);
  }

  /** Puts records that did not commit back in front, in their order. */
  putBack(items: Pending[]): void {
    if (items.length > 0) this.#items = items.concat(this.#items);
  }

  /** Removes these records (by identity) wherever they are. */
  forget(items: ReadonlySet<Pending>): void {
    this.#items = this.#items.filter((p) => !items.has(p));
  }

  /** Removes every record a durable caller waits for and rejects each waiter once with `err()`. */
  rejectDurable(err: () => Error): void {
    const failed = new Set<Waiter>();
    for (const p of this.#items) if (p.waiter) failed.add(p.waiter);
    if (failed.size === 0) return;
    this.#items = this.#items.filter((p) => p.waiter === undefined);
    for (const w of failed) w.reject(err());
  }

  /** Empties the queue; returns what it held. */
  clear(): Pending[] {
    const all = this.#items;
    this.#items = [];
    return all;
  }
}
