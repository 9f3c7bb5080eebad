import type { Finding } from '../../domain/finding.js';
import type { IndexObservation } from '../../domain/index-observation.js';
import type { FindingBook } from '../finding-book.js';

export type { IndexObservation };

/**
 * `orphaned_index_entries` (CC6.2: revoked access still referenced): an index key (a user's
 * sessions, a client's refresh tokens) still lists tokens that are gone. Applications that
 * resolve "all sessions of a user" through such an index act on stale ids, and the index grows
 * without bound (spring-session #2230, #3453). One finding per index rule: opened when a
 * reconciliation finds orphans, kept current while they remain, resolved once one finds none.
 */
export class OrphanedIndexRule {
  readonly #book: FindingBook;
  readonly #open = new Map<string, string>();

  constructor(book: FindingBook) {
    this.#book = book;
  }

  observe(observations: readonly IndexObservation[], now: number, evidenceSeq?: number): Finding[] {
    const out: Finding[] = [];
    for (const o of observations) {
      const id = this.#open.get(o.index) ?? this.#openFromBook(o.index);
      const attributes = {
        index: o.index,
        orphans: o.orphans,
        members: o.members,
        keysWithOrphans: o.keysWithOrphans,
        fingerprints: o.fingerprints.join(' '),
      };
      if (o.orphans > 0) {
        if (this.#book.isOpen(id)) {
          this.#book.update(id, attributes, [evidenceSeq]);
          continue;
        }
        const f = this.#book.open(
          {
            rule: 'orphaned_index_entries',
            key: o.index,
            kind: o.kind,
            summary: `Index ${o.index} lists ${o.orphans} ${o.kind} id(s) whose token is gone (${o.keysWithOrphans} index key(s)): revoked access still referenced.`,
            evidence: [evidenceSeq],
            attributes,
          },
          now,
        );
        if (f) {
          this.#open.set(o.index, f.id);
          out.push(f);
        }
      } else if (id !== undefined) {
        this.#open.delete(o.index);
        const f = this.#book.resolve(
          id,
          now,
          (opened) => `${opened.summary} Resolved: the index no longer lists gone tokens.`,
          { ...attributes, resolution: 'cleaned' },
          [evidenceSeq],
        );
        if (f) out.push(f);
      }
    }
    return out;
  }

  /**
   * The open finding of an index after a restart: the book comes back from the correlator's
   * snapshot, this rule's own map does not, so without this a restored finding would never
   * resolve and a second one would open beside it.
   */
  #openFromBook(index: string): string | undefined {
    const f = this.#book
      .list()
      .find((x) => x.rule === 'orphaned_index_entries' && x.attributes.index === index);
    if (f) this.#open.set(index, f.id);
    return f?.id;
  }
}
