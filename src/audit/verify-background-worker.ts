import { createPublicKey } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { keyIdOf } from './signing-keys.js';
import { verifyLedger } from './verify.js';
import type { BackgroundVerifyData, BackgroundVerifyResult } from './background-verify.js';

// Worker entry of BackgroundVerifier: the full verification of a live ledger off the event loop.
const data = workerData as BackgroundVerifyData;
// Load the native binding first and say so: terminating this thread while better-sqlite3
// registers itself aborts the whole process (FATAL ERROR napi_get_last_error_info, seen when
// SIGTERM came right after start), so BackgroundVerifier.close() waits for this message.
new Database(':memory:').close();
parentPort?.postMessage({ loaded: true });
const publicKey = createPublicKey(data.publicKeyPem);
verifyLedger({
  dbPath: data.dbPath,
  checkpointLog: data.checkpointLog,
  trusted: [{ keyId: keyIdOf(publicKey), publicKey, source: data.keySource }],
  threads: 1,
}).then(
  (r) => {
    const result: BackgroundVerifyResult = {
      ok: r.ok,
      records: r.records,
      problems: r.problems.slice(0, 10),
      problemCount: r.problems.length + r.moreProblems,
      durationMs: r.stats.durationMs,
    };
    parentPort?.postMessage(result);
  },
  (err: unknown) => {
    parentPort?.postMessage({ error: (err as Error).message });
  },
);
