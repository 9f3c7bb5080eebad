import { createHash } from 'node:crypto';
import { constants, type FileHandle, open, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Readable } from 'node:stream';

import {
  MANIFEST_FILE,
  SIGNATURE_FILE,
  manifestSignatureValid,
  parseManifest,
} from '../compliance/bundle-manifest.js';
import { TokenwatchError } from '../errors.js';

/**
 * Which bundle files `GET /v1/exports/:id/:file` serves (issue #17, finding 6). Nothing on disk
 * is trusted by itself: the manifest only counts once its signature verifies under our signing
 * key, and a file only once its name is one an export writes, its resolved path stays inside the
 * bundle directory (no `..`, no symlink out), and its SHA-256 equals the signed manifest's.
 * The digest is computed on the same open file descriptor that is then streamed, so the file
 * cannot be swapped between the check and the read.
 */

/** Directory names `POST /v1/exports` creates: `<stamp>-<format>-<8 hex>`. */
export const EXPORT_ID = /^[0-9TZ]{16}-[a-z]+-[0-9a-f]{8}$/;

/** File names an export writes (src/compliance/export-bundle.ts): nothing else is served. */
export const BUNDLE_FILE =
  /^(?:manifest\.json|manifest\.sig|checkpoints\.jsonl|tail-leaves\.txt|records-[0-9]{6}\.(?:jsonl|csv|ocsf\.jsonl))$/;

/** Largest manifest or signature read (a manifest lists files, it is never large). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

function notFound(what = 'no such file in this export'): TokenwatchError {
  return new TokenwatchError('ERR_NOT_FOUND', what);
}

async function openInside(dir: string, name: string): Promise<FileHandle> {
  const path = join(dir, name);
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw notFound();
  }
  if (real !== join(dir, name) || !real.startsWith(`${dir}${sep}`)) throw notFound();
  try {
    // O_NOFOLLOW: a symlink put in place after realpath is not followed either.
    return await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    throw notFound();
  }
}

async function readAll(fh: FileHandle, max: number): Promise<Buffer> {
  const { size } = await fh.stat();
  if (size > max) throw notFound('export manifest is not readable');
  const buf = Buffer.alloc(size);
  await fh.read(buf, 0, size, 0);
  return buf;
}

async function sha256Of(fh: FileHandle): Promise<string> {
  const h = createHash('sha256');
  const chunk = Buffer.alloc(1 << 16);
  for (let pos = 0; ;) {
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
    if (bytesRead === 0) break;
    h.update(chunk.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return h.digest('hex');
}

/**
 * Opens `file` of bundle `id` for serving, after every check above. 404 for anything that does
 * not pass (the caller learns nothing about what exists); a bundle whose manifest signature or
 * file digest does not verify is refused with 409 ERR_LEDGER_INTEGRITY.
 */
export async function openBundleFile(
  exportDir: string,
  id: string,
  file: string,
  publicKey: KeyObject,
): Promise<Buffer | Readable> {
  if (!EXPORT_ID.test(id)) throw notFound('no such export');
  if (!BUNDLE_FILE.test(file)) throw notFound();
  let dir: string;
  try {
    const root = await realpath(exportDir);
    dir = await realpath(join(root, id));
    if (dir !== join(root, id)) throw notFound('no such export');
  } catch (err) {
    if (err instanceof TokenwatchError) throw err;
    throw notFound('no such export');
  }
  const manifestFh = await openInside(dir, MANIFEST_FILE);
  const sigFh = await openInside(dir, SIGNATURE_FILE).catch(async (err: unknown) => {
    await manifestFh.close();
    throw err;
  });
  let manifestBytes: Buffer;
  let sig: Buffer;
  try {
    manifestBytes = await readAll(manifestFh, MAX_MANIFEST_BYTES);
    sig = await readAll(sigFh, 4096);
  } finally {
    await manifestFh.close();
    await sigFh.close();
  }
  if (!manifestSignatureValid(manifestBytes, sig.toString('utf8'), publicKey))
    throw tampered('the export manifest signature does not verify');
  if (file === MANIFEST_FILE) return manifestBytes;
  if (file === SIGNATURE_FILE) return sig;
  const manifest = parseManifest(manifestBytes);
  if (typeof manifest === 'string') throw tampered('the export manifest is not readable');
  const entry = manifest.files.find((f) => f.name === file);
  if (!entry) throw notFound();
  const fh = await openInside(dir, file);
  try {
    if ((await sha256Of(fh)) !== entry.sha256)
      throw tampered(`${file} does not match the signed manifest`);
  } catch (err) {
    await fh.close();
    throw err;
  }
  return fh.createReadStream({ start: 0, autoClose: true });
}

function tampered(message: string): TokenwatchError {
  return new TokenwatchError('ERR_LEDGER_INTEGRITY', message);
}
