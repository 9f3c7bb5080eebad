import { chmodSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { generateKeyPairSync, hash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  keyIdOf,
  loadSigningKey,
  loadTrustedKey,
  rawPublicKey,
  resolveSigningKey,
  writeKeyPair,
} from '../../src/audit/signing-keys.js';
import { tempDir } from './helpers.js';

describe('signing keys', () => {
  it('keygen writes a PEM pair: private 0600, public 0644, never overwriting', () => {
    const dir = join(tempDir(), 'keys');
    const { keyId, privatePath, publicPath } = writeKeyPair(dir);
    expect(statSync(privatePath).mode & 0o777).toBe(0o600);
    expect(statSync(publicPath).mode & 0o777).toBe(0o644);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readFileSync(privatePath, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(readFileSync(publicPath, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(loadSigningKey(privatePath).keyId).toBe(keyId);
    expect(loadTrustedKey(publicPath).keyId).toBe(keyId);
    expect(() => writeKeyPair(dir)).toThrow(/not overwriting/);
  });

  it('names a key by the first 16 hex of SHA-256 over the raw 32-byte public key', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = rawPublicKey(publicKey);
    expect(raw).toHaveLength(32);
    expect(keyIdOf(publicKey)).toBe(hash('sha256', raw, 'hex').slice(0, 16));
    expect(keyIdOf(publicKey)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('generates the key pair beside the database once, then reuses it', () => {
    const dir = tempDir();
    const dbPath = join(dir, 'audit.db');
    const a = resolveSigningKey(undefined, dbPath);
    expect(a.generated).toBe(true);
    expect(statSync(join(dir, 'signing.key')).mode & 0o777).toBe(0o600);
    const b = resolveSigningKey(undefined, dbPath);
    expect(b.key.keyId).toBe(a.key.keyId);
    const configured = resolveSigningKey(join(dir, 'signing.key'), join(tempDir(), 'other.db'));
    expect(configured).toMatchObject({ generated: false, key: { keyId: a.key.keyId } });
  });

  it('refuses a key file that group or others can read, as ssh does', () => {
    const dir = tempDir();
    const { privatePath } = writeKeyPair(dir);
    for (const mode of [0o640, 0o604, 0o660]) {
      chmodSync(privatePath, mode);
      expect(() => resolveSigningKey(privatePath, join(dir, 'a.db'))).toThrow(
        expect.objectContaining({
          code: 'ERR_CONFIG_INVALID',
          message: expect.stringMatching(new RegExp(`mode 0${mode.toString(8)}`)) as string,
        }) as Error,
      );
    }
    chmodSync(privatePath, 0o400);
    expect(resolveSigningKey(privatePath, join(dir, 'a.db')).generated).toBe(false);
  });

  it('refuses keys that are not Ed25519 with a config error naming the key', () => {
    const dir = tempDir();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const path = join(dir, 'ec.key');
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    expect(() => resolveSigningKey(path, join(dir, 'a.db'))).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringMatching(/audit.signingKey.*Ed25519/) as string,
      }) as Error,
    );
    expect(() => loadTrustedKey(join(dir, 'missing.pub'))).toThrow(
      expect.objectContaining({ code: 'ERR_KEY_INVALID' }) as Error,
    );
  });
});
