import type { TokenRecord } from './token-store.js';

/** Milliseconds to seconds with 2 decimals, as shown in findings. */
export const secs = (ms: number): number => Math.round(ms / 10) / 100;

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The token fields every per-token finding carries (fingerprints only, never secrets). */
export function tokenFields(rec: TokenRecord): {
  kind: string;
  fingerprint: string;
  subject: string | undefined;
  sessionId: string | undefined;
} {
  return {
    kind: rec.kind,
    fingerprint: rec.fingerprint,
    subject: rec.joins.subject,
    sessionId: rec.joins.sessionId,
  };
}
