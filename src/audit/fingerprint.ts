import { createHmac, timingSafeEqual } from 'node:crypto';

/** One HMAC key with its stable id. The first key of a keyring is the one that writes. */
export interface HmacKey {
  id: string;
  key: Buffer;
}

/**
 * HMAC-SHA256 fingerprints of secrets (tokens, session ids, jtis), Vault audit-device style:
 * the ledger, logs, metrics and exports only ever hold `hmac-sha256:<keyId>:<hex>`. Old key ids
 * stay resolvable after rotation so an auditor can search history with `audit-hash`.
 */
export class Fingerprinter {
  readonly current: HmacKey;
  readonly keys: readonly HmacKey[];
  readonly #prefix: string;

  constructor(keys: readonly HmacKey[]) {
    const first = keys[0];
    if (!first) throw new Error('Fingerprinter needs at least one HMAC key');
    const ids = new Set<string>();
    for (const k of keys) {
      if (!/^[A-Za-z0-9_.-]{1,32}$/.test(k.id)) throw new Error(`invalid HMAC key id ${k.id}`);
      if (ids.has(k.id)) throw new Error(`duplicate HMAC key id ${k.id}`);
      if (k.key.length < 16) throw new Error(`HMAC key ${k.id} is shorter than 16 bytes`);
      ids.add(k.id);
    }
    this.keys = keys;
    this.current = first;
    this.#prefix = `hmac-sha256:${first.id}:`;
  }

  /** Fingerprint under the current key. `value` as a string is hashed as UTF-8 unless `latin1` bytes are given as a Buffer. */
  of(value: string | Buffer): string {
    return this.#prefix + createHmac('sha256', this.current.key).update(value).digest('hex');
  }

  /** Fingerprint of raw bytes carried in a latin1 string (how Redis keys are handled). */
  ofLatin1(bytes: string): string {
    return (
      this.#prefix + createHmac('sha256', this.current.key).update(bytes, 'latin1').digest('hex')
    );
  }

  /** Fingerprints under every key id (for auditors searching history). */
  all(value: string | Buffer): { keyId: string; fingerprint: string }[] {
    return this.keys.map((k) => ({
      keyId: k.id,
      fingerprint: `hmac-sha256:${k.id}:${createHmac('sha256', k.key).update(value).digest('hex')}`,
    }));
  }

  /** True when `fingerprint` is the fingerprint of `value` under the key id it names. */
  matches(value: string | Buffer, fingerprint: string): boolean {
    const m = /^hmac-sha256:([^:]+):([0-9a-f]{64})$/.exec(fingerprint);
    if (!m) return false;
    const key = this.keys.find((k) => k.id === m[1]);
    if (!key) return false;
    const want = createHmac('sha256', key.key).update(value).digest();
    return timingSafeEqual(want, Buffer.from(m[2] ?? '', 'hex'));
  }
}

export const FINGERPRINT_RE = /^hmac-sha256:[A-Za-z0-9_.-]{1,32}:[0-9a-f]{64}$/;
