/**
 * Several files given for one ledger id (docs/ha-evidence.md): the same file twice, a copy under
 * another name, or an older snapshot of the ledger. Only one of them is read, the one that says
 * the most (`better`: by default the one with more records): reading every copy would count a
 * record without a position once per copy, and reading the first given would let whoever
 * chooses the files hide the later records of a ledger (its releases, its later epochs) behind
 * an older snapshot of it. Two copies of one id that differ other than by length are a fork,
 * which takes the ledger's signing key; the better one is read all the same.
 */
export interface CopyChoice<T> {
  /** The items to read: one per ledger id (every item without an id). */
  read: T[];
  /** The items left out, each with the copy read instead. */
  copies: { copy: T; of: T }[];
}

export function chooseCopies<T>(
  items: readonly T[],
  id: (t: T) => string | null,
  better: (a: T, b: T) => boolean,
): CopyChoice<T> {
  const best = new Map<string, T>();
  for (const t of items) {
    const k = id(t);
    if (k === null) continue;
    const seen = best.get(k);
    if (seen === undefined || better(t, seen)) best.set(k, t);
  }
  const read: T[] = [];
  const copies: { copy: T; of: T }[] = [];
  for (const t of items) {
    const k = id(t);
    const of = k === null ? t : (best.get(k) as T);
    if (of === t) read.push(t);
    else copies.push({ copy: t, of });
  }
  return { read, copies };
}
