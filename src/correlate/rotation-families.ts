import { BoundedMap } from './bounded-map.js';
import { arr, str } from './snapshot-read.js';

/** Most recent token ids kept per family: enough to reach every token a cache may still hold. */
const MAX_IDS_PER_FAMILY = 64;

/**
 * Refresh-token families learned from rotations (previous → next), so that a reuse detection
 * naming one token id reaches every token of its family (RFC 9700 §4.14.2: on reuse the
 * authorization server revokes the whole family, so the cache must drop all of it).
 */
export class RotationFamilies {
  readonly #familyOf: BoundedMap<string, string>;
  readonly #members: BoundedMap<string, string[]>;

  constructor(maxFamilies: number) {
    this.#members = new BoundedMap(maxFamilies);
    this.#familyOf = new BoundedMap(maxFamilies * 4);
  }

  get sizes(): { families: number; tokenIds: number } {
    return { families: this.#members.size, tokenIds: this.#familyOf.size };
  }

  get evictions(): number {
    return this.#members.evictions + this.#familyOf.evictions;
  }

  link(rotation: {
    previous: readonly string[];
    next: readonly string[];
    familyId?: string | undefined;
  }): void {
    const ids = [...rotation.previous, ...rotation.next];
    if (ids.length === 0) return;
    let family = rotation.familyId;
    for (const id of rotation.previous) family ??= this.#familyOf.get(id);
    family ??= `chain:${ids[0]}`;
    const members = this.#members.get(family) ?? [];
    for (const id of ids) {
      if (!members.includes(id)) members.push(id);
      this.#familyOf.set(id, family);
      this.#familyOf.touch(id);
    }
    if (members.length > MAX_IDS_PER_FAMILY) members.splice(0, members.length - MAX_IDS_PER_FAMILY);
    this.#members.set(family, members);
    this.#members.touch(family);
  }

  /** The newest `max` families (oldest first) with their member ids. */
  snapshot(max: number, truncated: Record<string, number>): [string, string[]][] {
    const all = [...this.#members.entries()];
    if (all.length > max) truncated.families = all.length - max;
    return all.slice(Math.max(0, all.length - max)).map(([f, ids]) => [f, [...ids]]);
  }

  /** @throws TokenwatchError ERR_SNAPSHOT_INVALID */
  restore(raw: unknown, path: string): void {
    for (const [i, e] of arr(raw, path, this.#members.capacity).entries()) {
      const pair = arr(e, `${path}[${i}]`, 2);
      const family = str(pair[0], `${path}[${i}][0]`);
      const ids = arr(pair[1], `${path}[${i}][1]`, MAX_IDS_PER_FAMILY).map((id, j) =>
        str(id, `${path}[${i}][1][${j}]`),
      );
      this.#members.set(family, ids);
      for (const id of ids) this.#familyOf.set(id, family);
    }
  }

  /** `ids` plus every id known to share a family with one of them (or with `familyId`). */
  expand(ids: readonly string[], familyId: string | undefined): string[] {
    const out = new Set(ids);
    const families = new Set<string>();
    if (familyId !== undefined) families.add(familyId);
    for (const id of ids) {
      const f = this.#familyOf.get(id);
      if (f !== undefined) families.add(f);
    }
    for (const f of families) for (const id of this.#members.get(f) ?? []) out.add(id);
    return [...out];
  }
}
