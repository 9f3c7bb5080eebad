import { parseArgs } from 'node:util';
import { writeKeyPair } from '../audit/signing-keys.js';
import { usage } from './usage.js';

/** `tokenwatch keygen --out DIR`: writes an Ed25519 checkpoint signing key pair (PEM). */
export function keygen(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  return new Promise((resolve) => {
    const { values } = parseArgs({ args, options: { out: { type: 'string' } }, strict: true });
    if (!values.out) usage('keygen needs --out DIR');
    const { keyId, privatePath, publicPath } = writeKeyPair(values.out);
    out.write(
      `key id ${keyId}\n` +
        `private key ${privatePath} (mode 0600): move it into a secret store (Vault, a Kubernetes\n` +
        `  Secret mounted 0400, a cloud secret manager), never beside the database, and point\n` +
        `  audit.signingKey or TOKENWATCH_SIGNING_KEY at it; a key readable by others is refused\n` +
        `public key  ${publicPath}: give it to auditors (tokenwatch verify --public-key); keep a copy\n` +
        `  away from the tokenwatch host, or verify calls its verdict unanchored\n` +
        `checkpoint log: set audit.checkpointLog or TOKENWATCH_CHECKPOINT_LOG to write-once or\n` +
        `  append-only storage (chattr +a, WORM, object lock) the tokenwatch host cannot rewrite\n`,
    );
    resolve(0);
  });
}
