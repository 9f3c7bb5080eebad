import { TokenwatchError } from '../errors.js';

/** Audit type of the correlator's state (the head of a split snapshot), periodic and at shutdown. */
export const SNAPSHOT_RECORD = 'correlator.snapshot';

/**
 * Audit type of one bounded piece of a split correlator snapshot. A snapshot is written as its
 * parts, then its `correlator.snapshot` head record naming how many parts it has: a head only
 * exists once every part was appended, and restore takes a snapshot only with all its parts.
 */
export const SNAPSHOT_PART_RECORD = 'correlator.snapshot_part';

/**
 * Bytes of JSON per part before the next one starts (a single entry larger than this gets a
 * part of its own). Small enough that encoding, hashing and writing one part is a few
 * milliseconds of event loop, well under the ~256 KB asked of ledger records.
 */
export const DEFAULT_PART_BYTES = 128 * 1024;

/** A part's lists: section path (`tokens`, `attribution.pending`) to its next entries. */
export type PartLists = Record<string, unknown[]>;

/**
 * A captured snapshot split into its head and its lists. The head is the state with every list
 * (a top-level array, or an array one level down) emptied; `sections` counts each list's
 * entries, so restore can tell a complete set of parts from one missing a part.
 */
export interface SnapshotPlan {
  head: Record<string, unknown>;
  sections: Record<string, number>;
  lists: [string, readonly unknown[]][];
}

/**
 * Splits `state` without copying or encoding its entries (cheap at any size). The correlator's
 * snapshot content is not interpreted here: any list is split, whatever it holds.
 */
export function planSnapshot(state: object): SnapshotPlan {
  const head: Record<string, unknown> = {};
  const sections: Record<string, number> = {};
  const lists: [string, readonly unknown[]][] = [];
  const take = (path: string, items: readonly unknown[]): unknown[] => {
    if (items.length > 0) {
      sections[path] = items.length;
      lists.push([path, items]);
    }
    return [];
  };
  for (const [k, v] of Object.entries(state)) {
    if (Array.isArray(v)) head[k] = take(k, v);
    else if (isPlainObject(v)) {
      const sub: Record<string, unknown> = {};
      for (const [k2, v2] of Object.entries(v)) {
        sub[k2] = Array.isArray(v2) ? take(`${k}.${k2}`, v2) : v2;
      }
      head[k] = sub;
    } else head[k] = v;
  }
  return { head, sections, lists };
}

/**
 * The plan's entries in parts of about `maxBytes` of JSON each, in order, produced lazily: each
 * `next()` encodes only the entries of one part (the writer spreads them over event-loop turns).
 */
export function* snapshotParts(
  plan: SnapshotPlan,
  maxBytes = DEFAULT_PART_BYTES,
): Generator<PartLists, void, undefined> {
  let part: PartLists = {};
  let bytes = 0;
  for (const [section, items] of plan.lists) {
    for (const item of items) {
      const size = (JSON.stringify(item) ?? 'null').length + 1;
      if (bytes > 0 && bytes + size > maxBytes) {
        yield part;
        part = {};
        bytes = 0;
      }
      (part[section] ??= []).push(item);
      bytes += size;
    }
  }
  if (bytes > 0) yield part;
}

/**
 * The state a head and its parts (in part order) stand for. Every part must fill a list the
 * head declares, and every list must end up with exactly the entries the head counts.
 * @throws TokenwatchError ERR_SNAPSHOT_INVALID
 */
export function assembleSnapshot(
  head: unknown,
  sections: unknown,
  parts: readonly unknown[],
): Record<string, unknown> {
  if (!isPlainObject(head)) invalid('state', 'must be an object');
  if (!isPlainObject(sections)) invalid('sections', 'must be an object');
  const state = structuredClone(head);
  const targets = new Map<string, { list: unknown[]; expected: number }>();
  for (const [path, n] of Object.entries(sections)) {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
      invalid(`sections.${path}`, 'must be a positive integer');
    const [k, k2] = path.split('.', 2) as [string, string | undefined];
    const parent = k2 === undefined ? state : state[k];
    const list = isPlainObject(parent) ? parent[k2 ?? k] : undefined;
    if (!Array.isArray(list) || list.length > 0)
      invalid(`sections.${path}`, 'is not an empty list');
    targets.set(path, { list, expected: n });
  }
  for (const [i, part] of parts.entries()) {
    if (!isPlainObject(part)) invalid(`parts[${i}]`, 'must be an object');
    for (const [path, items] of Object.entries(part)) {
      const t = targets.get(path);
      if (!t) invalid(`parts[${i}].${path}`, 'is not a section of the snapshot');
      if (!Array.isArray(items) || t.list.length + items.length > t.expected)
        invalid(`parts[${i}].${path}`, `holds more than the ${t.expected} entries declared`);
      for (const item of items) t.list.push(item);
    }
  }
  for (const [path, t] of targets)
    if (t.list.length !== t.expected)
      invalid(`sections.${path}`, `has ${t.list.length} of ${t.expected} entries`);
  return state;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function invalid(path: string, message: string): never {
  throw new TokenwatchError('ERR_SNAPSHOT_INVALID', `correlator snapshot ${path}: ${message}`, {
    details: { path },
  });
}
