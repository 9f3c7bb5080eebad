import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { Meta } from './verify-meta.js';
import { verifyRange, type RangeResult, type RangeTask } from './verify-rows.js';
import { compiledWorkerUrl } from './worker-url.js';

/** Below this many records one thread scans faster than starting workers. */
const PARALLEL_FROM = 100_000;

/**
 * Threads for the record scan of `verify`: one when no worker was built or the ledger is small;
 * `requested` (at most 16, and one per 1000 records); else up to 4. `built` and `cores` are the
 * machine's (parameters so that the rule is testable from the sources, where no worker is built).
 */
export function chooseThreads(
  requested: number | undefined,
  span: number,
  built = compiledWorkerUrl('verify-worker.js') !== undefined,
  cores = availableParallelism(),
): number {
  if (!built) return 1; // none was built: one thread
  if (requested !== undefined) return Math.max(1, Math.min(requested, 16, Math.ceil(span / 1000)));
  if (span < PARALLEL_FROM) return 1;
  return Math.max(1, Math.min(cores, 4));
}

/**
 * The rows first..max in `threads` equal seq slices (the last one shorter): the first extends
 * `anchor`, the others the stored chain before them; each gets the signed chains inside it.
 */
export function rangeTasks(
  dbPath: string,
  meta: Pick<Meta, 'firstSeq' | 'maxSeq'>,
  anchor: string | null,
  pairs: readonly [number, string][],
  threads: number,
  tolerance: number,
): RangeTask[] {
  const span = meta.maxSeq - meta.firstSeq + 1;
  const size = Math.ceil(span / threads);
  const tasks: RangeTask[] = [];
  for (let from = meta.firstSeq; from <= meta.maxSeq; from += size) {
    const to = Math.min(meta.maxSeq, from + size - 1);
    tasks.push({
      dbPath,
      from,
      to,
      ...(from === meta.firstSeq ? { anchor } : {}),
      checkpoints: pairs.filter(([s]) => s >= from && s <= to),
      clockToleranceMs: tolerance,
    });
  }
  return tasks;
}

/**
 * Verifies the rows first..max in equal seq slices: the first on this thread (on `db`, inside
 * the caller's read snapshot, when it is the only one), the rest on verify-worker threads.
 */
export async function scan(
  dbPath: string,
  db: Database.Database,
  meta: Meta,
  anchor: string | null,
  pairs: readonly [number, string][],
  threads: number,
  tolerance: number,
): Promise<RangeResult[]> {
  const [own, ...rest] = rangeTasks(dbPath, meta, anchor, pairs, threads, tolerance);
  const url = compiledWorkerUrl('verify-worker.js') as URL; // chooseThreads found it
  const workers = rest.map(
    (task) =>
      new Promise<RangeResult>((resolve, reject) => {
        const w = new Worker(url, { workerData: task });
        w.once('message', (m: RangeResult) => resolve(m));
        w.once('error', reject);
        w.once('exit', (code) => {
          if (code !== 0) reject(new Error(`verify worker exited with code ${code}`));
        });
      }),
  );
  const mine = own ? [verifyRange(own, threads === 1 ? db : undefined)] : [];
  return [...mine, ...(await Promise.all(workers))];
}
