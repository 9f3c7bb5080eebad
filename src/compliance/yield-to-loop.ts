/**
 * Lets other work run between pages of a long read (HTTP requests, the ledger's own commits).
 * The reads themselves are src/audit/store/'s.
 */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
