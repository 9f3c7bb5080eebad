import { existsSync, readFileSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TokenwatchError } from '../errors.js';
import type { HmacKey } from './fingerprint.js';
import { assertPrivateFile } from './signing-keys.js';

export interface HmacKeyConfig {
  id: string;
  key?: string | undefined;
  file?: string | undefined;
}

/** Where the generated key lives when none is configured: beside the database. */
export function generatedKeyPath(dbPath: string): string {
  return join(dirname(dbPath), 'hmac.key');
}

/**
 * Resolves the configured HMAC keys. With none configured, loads (or on first start generates,
 * mode 0600) a key stored beside the database, so fingerprints stay stable across restarts.
 */
export function resolveHmacKeys(
  configured: readonly HmacKeyConfig[],
  dbPath: string,
): { keys: HmacKey[]; generated?: string } {
  if (configured.length > 0) {
    return {
      keys: configured.map((k, i) => {
        if (k.key !== undefined) return { id: k.id, key: Buffer.from(k.key, 'utf8') };
        if (k.file !== undefined) {
          let text: string;
          try {
            assertPrivateFile(k.file, `audit.hmacKeys[${i}].file`);
          } catch (err) {
            throw new TokenwatchError('ERR_CONFIG_INVALID', (err as Error).message, { cause: err });
          }
          try {
            text = readFileSync(k.file, 'utf8').trim();
          } catch (err) {
            throw new TokenwatchError(
              'ERR_CONFIG_INVALID',
              `audit.hmacKeys[${i}].file: cannot read ${k.file}`,
              { cause: err },
            );
          }
          if (text.length < 16) {
            throw new TokenwatchError(
              'ERR_CONFIG_INVALID',
              `audit.hmacKeys[${i}].file: key is shorter than 16 characters`,
            );
          }
          return { id: k.id, key: Buffer.from(text, 'utf8') };
        }
        throw new TokenwatchError(
          'ERR_CONFIG_INVALID',
          `audit.hmacKeys[${i}]: needs either key or file`,
        );
      }),
    };
  }
  const path = generatedKeyPath(dbPath);
  if (existsSync(path)) {
    try {
      assertPrivateFile(path, 'HMAC key');
    } catch (err) {
      throw new TokenwatchError('ERR_CONFIG_INVALID', (err as Error).message, { cause: err });
    }
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { id?: unknown; key?: unknown };
    if (typeof parsed.id !== 'string' || typeof parsed.key !== 'string') {
      throw new TokenwatchError('ERR_CONFIG_INVALID', `${path}: not a tokenwatch HMAC key file`);
    }
    return { keys: [{ id: parsed.id, key: Buffer.from(parsed.key, 'base64') }] };
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const id = `g${randomBytes(4).toString('hex')}`;
  const key = randomBytes(32);
  writeFileSync(path, JSON.stringify({ id, key: key.toString('base64') }) + '\n', {
    mode: 0o600,
    flag: 'wx',
  });
  chmodSync(path, 0o600);
  return { keys: [{ id, key }], generated: path };
}
