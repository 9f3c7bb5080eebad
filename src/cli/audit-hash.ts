import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Fingerprinter } from '../audit/fingerprint.js';
import { generatedKeyPath, resolveHmacKeys } from '../audit/hmac-keys.js';
import { loadConfig } from '../config/load.js';
import { TokenwatchError } from '../errors.js';
import { usage } from './usage.js';

/**
 * `tokenwatch audit-hash VALUE [--config FILE]` (Vault's sys/audit-hash): prints the fingerprint
 * of VALUE under every configured HMAC key id, the writing key first, so an auditor can search
 * the ledger for a known token. VALUE `-` reads it from stdin, keeping it out of shell history
 * and the process list.
 */
export function auditHash(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  stdin: () => string = () => readFileSync(0, 'utf8'),
): Promise<number> {
  return new Promise((resolve) => {
    const { values, positionals } = parseArgs({
      args,
      options: { config: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length !== 1) usage('audit-hash needs exactly one VALUE (or - to read stdin)');
    let value = positionals[0] ?? '';
    if (value === '-') value = stdin().replace(/\r?\n$/, '');
    const { config } = loadConfig({ file: values.config, env: process.env });
    if (config.audit.hmacKeys.length === 0 && !existsSync(generatedKeyPath(config.audit.path))) {
      // resolveHmacKeys would generate a fresh key: fingerprints under it would match nothing.
      throw new TokenwatchError(
        'ERR_CONFIG_INVALID',
        `no HMAC key configured (audit.hmacKeys, TOKENWATCH_HMAC_KEY) and none generated at ${generatedKeyPath(config.audit.path)}`,
      );
    }
    const { keys } = resolveHmacKeys(config.audit.hmacKeys, config.audit.path);
    for (const f of new Fingerprinter(keys).all(value)) out.write(`${f.fingerprint}\n`);
    resolve(0);
  });
}
