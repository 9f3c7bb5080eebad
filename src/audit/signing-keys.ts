import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hash,
  type KeyObject,
} from 'node:crypto';
import { TokenwatchError } from '../errors.js';

/** An Ed25519 key that signs checkpoints, with the id checkpoints name it by. */
export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** A public key an auditor trusts for checkpoint signatures. */
export interface TrustedKey {
  keyId: string;
  publicKey: KeyObject;
  /** Where it came from (file path), for reports. */
  source: string;
}

/** File names `keygen` writes and the generated default uses beside the database. */
export const PRIVATE_KEY_FILE = 'signing.key';
export const PUBLIC_KEY_FILE = 'signing.pub';
/** Default external checkpoint log beside the database (production: write-once storage). */
export const CHECKPOINT_LOG_FILE = 'checkpoints.jsonl';

/**
 * Key id: the first 16 hex digits of SHA-256 over the raw 32-byte Ed25519 public key (RFC 8032
 * §5.1.5 encoding), in the spirit of RFC 6962 §3.2's log id = SHA-256 of the log's public key.
 * 64 bits name a key among a handful; the signature check is what authenticates.
 */
export function keyIdOf(publicKey: KeyObject): string {
  return hash('sha256', rawPublicKey(publicKey), 'hex').slice(0, 16);
}

/** The raw 32-byte public key. */
export function rawPublicKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new TokenwatchError('ERR_KEY_INVALID', 'checkpoint keys must be Ed25519');
  }
  return Buffer.from(jwk.x, 'base64url');
}

/** A fresh Ed25519 key pair as PEM (PKCS#8 private, SPKI public). */
export function generateSigningKeyPem(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

/**
 * Writes a new key pair into `dir`: the private key mode 0600, the public key 0644. Refuses to
 * overwrite either file (a replaced signing key would orphan every checkpoint it signed).
 */
export function writeKeyPair(dir: string): {
  keyId: string;
  privatePath: string;
  publicPath: string;
} {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const privatePath = join(dir, PRIVATE_KEY_FILE);
  const publicPath = join(dir, PUBLIC_KEY_FILE);
  for (const p of [privatePath, publicPath]) {
    if (existsSync(p)) throw new TokenwatchError('ERR_USAGE', `${p} exists; not overwriting it`);
  }
  const { privatePem, publicPem, keyId } = generateSigningKeyPem();
  writeFileSync(privatePath, privatePem, { mode: 0o600, flag: 'wx' });
  chmodSync(privatePath, 0o600); // the umask may have narrowed it further, never widened
  writeFileSync(publicPath, publicPem, { mode: 0o644, flag: 'wx' });
  chmodSync(publicPath, 0o644);
  return { keyId, privatePath, publicPath };
}

/**
 * Refuses a secret key file that anyone but its owner may read or write, as ssh refuses an
 * unprotected private key: a signing key others can read lets them forge checkpoints and seals,
 * an HMAC key lets them test guesses against fingerprints. Not checked on Windows (no modes).
 */
export function assertPrivateFile(path: string, what: string): void {
  if (process.platform === 'win32') return;
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return; // reading it reports the problem
  }
  if ((mode & 0o077) !== 0) {
    throw new TokenwatchError(
      'ERR_KEY_INVALID',
      `${what} ${path} has mode 0${mode.toString(8)}: it is accessible to group or others; refusing it (chmod 600 ${path}, or mount the secret with mode 0400)`,
    );
  }
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new TokenwatchError('ERR_KEY_INVALID', `cannot read ${what} ${path}`, { cause: err });
  }
}

/** Loads a PEM Ed25519 private key. */
export function loadSigningKey(path: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readPem(path, 'signing key'));
  } catch (err) {
    if (err instanceof TokenwatchError) throw err;
    throw new TokenwatchError('ERR_KEY_INVALID', `${path}: not a PEM private key`, { cause: err });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TokenwatchError(
      'ERR_KEY_INVALID',
      `${path}: checkpoint signing keys must be Ed25519, got ${privateKey.asymmetricKeyType ?? 'unknown'}`,
    );
  }
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

/** Loads a PEM Ed25519 public key (a private key file is accepted too: its public half). */
export function loadTrustedKey(path: string): TrustedKey {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(readPem(path, 'public key'));
  } catch (err) {
    if (err instanceof TokenwatchError) throw err;
    throw new TokenwatchError('ERR_KEY_INVALID', `${path}: not a PEM public key`, { cause: err });
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    throw new TokenwatchError('ERR_KEY_INVALID', `${path}: not an Ed25519 public key`);
  }
  return { keyId: keyIdOf(publicKey), publicKey, source: path };
}

/** Where the generated key pair lives when none is configured: beside the database. */
export function generatedSigningKeyPaths(dbPath: string): {
  privatePath: string;
  publicPath: string;
} {
  const dir = dirname(dbPath);
  return { privatePath: join(dir, PRIVATE_KEY_FILE), publicPath: join(dir, PUBLIC_KEY_FILE) };
}

/** The checkpoint log used when `audit.checkpointLog` is not set. */
export function defaultCheckpointLogPath(dbPath: string): string {
  return join(dirname(dbPath), CHECKPOINT_LOG_FILE);
}

/**
 * Resolves the checkpoint signing key: the configured file, otherwise a key pair beside the
 * database, generated on first start (like the HMAC key). `generated` is set when the key is
 * the one beside the database, so the caller can warn that production wants it elsewhere.
 */
export function resolveSigningKey(
  configured: string | undefined,
  dbPath: string,
): { key: SigningKey; path: string; generated: boolean } {
  if (configured !== undefined) {
    try {
      assertPrivateFile(configured, 'signing key');
      return { key: loadSigningKey(configured), path: configured, generated: false };
    } catch (err) {
      throw new TokenwatchError(
        'ERR_CONFIG_INVALID',
        `audit.signingKey: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
  const { privatePath, publicPath } = generatedSigningKeyPaths(dbPath);
  if (!existsSync(privatePath)) writeKeyPair(dirname(privatePath));
  try {
    assertPrivateFile(privatePath, 'signing key');
  } catch (err) {
    throw new TokenwatchError('ERR_CONFIG_INVALID', (err as Error).message, { cause: err });
  }
  const key = loadSigningKey(privatePath);
  if (!existsSync(publicPath)) {
    writeFileSync(publicPath, key.publicKey.export({ type: 'spki', format: 'pem' }).toString(), {
      mode: 0o644,
      flag: 'wx',
    });
  }
  return { key, path: privatePath, generated: true };
}
