import { LEDGER_FORMAT_VERSION } from './canonical.js';
import type { AuditInput } from './record.js';
import type { SigningKey } from './signing-keys.js';

export interface GenesisFacts {
  ledgerId: string;
  hmacKeyIds: readonly string[];
  signingKeyId?: string;
  signingKey?: SigningKey;
  retentionDays?: number;
}

/**
 * The first record of a new ledger file: what the file is (id, format) and the keys and
 * retention it was created under, as signed data (docs/ledger-format.md).
 */
export function genesisInput(facts: GenesisFacts, now: number): AuditInput {
  return {
    time: now,
    source: 'system',
    type: 'ledger.genesis',
    attrs: {
      ledgerId: facts.ledgerId,
      formatVersion: LEDGER_FORMAT_VERSION,
      hmacKeyIds: [...facts.hmacKeyIds],
      signingKeyId: facts.signingKeyId ?? facts.signingKey?.keyId,
      retentionDays: facts.retentionDays,
      batchSeals: facts.signingKey ? 1 : undefined,
    },
  };
}
