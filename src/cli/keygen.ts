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
        `private key ${privatePath} (mode 0600): point audit.signingKey or TOKENWATCH_SIGNING_KEY at it\n` +
        `public key  ${publicPath}: give it to auditors (tokenwatch verify --public-key)\n`,
    );
    resolve(0);
  });
}
