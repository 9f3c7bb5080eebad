import { parentPort, workerData } from 'node:worker_threads';
import { verifyRange, type RangeTask } from './verify-rows.js';

/** Worker entry of `tokenwatch verify`: verifies one slice and posts the RangeResult back. */
parentPort?.postMessage(verifyRange(workerData as RangeTask));
