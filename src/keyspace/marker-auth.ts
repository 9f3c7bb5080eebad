import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { HmacKey } from '../audit/fingerprint.js';

/**
 * Authenticated stream markers (issue #20, docs/ha.md "Threat model"). A marker key names
 * `(epoch, n)` and ends in a tag: the first {@link MARKER_TAG_CHARS} hex digits of
 * HMAC-SHA256(K_m, node, epoch, n), where K_m is derived from a configured `audit.hmacKeys` key
 * with HKDF-SHA256 under a label of its own. Whoever can write the watched Redis but does not
 * hold the shared HMAC key cannot make a marker that moves any instance's stream position.
 *
 * Domain separation: token fingerprints are HMAC-SHA256 under the configured key K itself over a
 * value the watched Redis chooses (a key name), and the ledger shows them; a tag computed as
 * HMAC(K, some text) could be obtained by writing a token key with that text. K_m = HKDF(K) is
 * never an HMAC key of any fingerprint, so no fingerprint ever equals a tag or helps to make one.
 *
 * The tag binds the node's id (the same id names the node's lease keys, so every instance of a
 * deployment names it alike): a marker seen on one node is refused on another.
 */

/** Hex digits of the tag (80 bits): forging one takes about 2^80 tries. */
export const MARKER_TAG_CHARS = 20;
const HKDF_SALT = 'tokenwatch/stream-marker';
const HKDF_INFO = 'tokenwatch marker tag key v1';

/** Tags of one node's markers: written by its owner, checked by every instance on arrival. */
export interface NodeMarkerAuth {
  /** The tag of marker `(epoch, n)` under the current (first) key. */
  tag(epoch: number, n: number): string;
  /** Whether `tag` is the tag of `(epoch, n)` under any configured key (key rotation). */
  verify(epoch: number, n: number, tag: string): boolean;
  /**
   * The tag of a committed position `pos` the owner publishes on the coordination Redis
   * (`committed:{node}` = `<pos>:<tag>`): whoever can write there without the key cannot name a
   * position past what the owner committed (a takeover would replay nothing after it).
   */
  committedTag(pos: string): string;
  verifyCommitted(pos: string, tag: string): boolean;
}

/** The marker keys derived from every configured HMAC key, the current (first) one first. */
export class MarkerAuth {
  readonly #keys: readonly Buffer[];

  constructor(keys: readonly HmacKey[]) {
    if (keys.length === 0) throw new Error('MarkerAuth needs at least one HMAC key');
    this.#keys = keys.map((k) => Buffer.from(hkdfSync('sha256', k.key, HKDF_SALT, HKDF_INFO, 32)));
  }

  forNode(node: string): NodeMarkerAuth {
    const keys = this.#keys;
    const current = keys[0] as Buffer;
    const check = (payload: string, tag: string): boolean => {
      if (tag.length !== MARKER_TAG_CHARS) return false;
      const got = Buffer.from(tag, 'latin1');
      for (const k of keys)
        if (timingSafeEqual(Buffer.from(tagOf(k, node, payload), 'latin1'), got)) return true;
      return false;
    };
    return {
      tag: (epoch, n) => tagOf(current, node, `marker\n${epoch}\n${n}`),
      verify: (epoch, n, tag) => check(`marker\n${epoch}\n${n}`, tag),
      committedTag: (pos) => tagOf(current, node, `committed\n${pos}`),
      verifyCommitted: (pos, tag) => check(`committed\n${pos}`, tag),
    };
  }
}

/** A createHmac per tag: markers are rare (one per markerEveryMs per node). */
function tagOf(key: Buffer, node: string, payload: string): string {
  // Length-prefixed node id: no two (node, payload) give the same input.
  return createHmac('sha256', key)
    .update(`${Buffer.byteLength(node)}:${node}\n${payload}`)
    .digest('hex')
    .slice(0, MARKER_TAG_CHARS);
}
