import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The compiled script of one of the audit module's worker threads (`verify-worker.js`,
 * `writer-worker.js`): next to this module in dist/; from the TypeScript sources (vitest) the
 * build's copy, which `npm test` makes before running the tests. Undefined when there is none.
 */
export function compiledWorkerUrl(file: string): URL | undefined {
  return [
    new URL(`./${file}`, import.meta.url),
    new URL(`../../dist/audit/${file}`, import.meta.url),
  ].find((u) => existsSync(fileURLToPath(u)));
}
