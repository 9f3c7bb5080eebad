import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  defaultCheckpointLogPath,
  generatedSigningKeyPaths,
  loadTrustedKey,
  type TrustedKey,
} from '../audit/signing-keys.js';
import { usage } from './usage.js';

/**
 * The ledgers named by the repeatable `--db` of verify / report / export (issue #20): each
 * value a ledger file, or a directory whose `*.db` files (directly in it, or one level down: one
 * directory per instance, with its key and checkpoint log beside its database) are ledgers.
 * `merged` when more than one value or a directory was given.
 */
export function expandDbArgs(values: readonly string[]): { paths: string[]; merged: boolean } {
  const paths: string[] = [];
  let merged = values.length > 1;
  for (const v of values) {
    if (!existsSync(v) || !statSync(v).isDirectory()) {
      paths.push(v);
      continue;
    }
    merged = true;
    const found: string[] = [];
    // Symbolic links are followed alike at both levels (an instance directory linked into the
    // evidence directory is read); an entry that cannot be read is named, not skipped.
    const kind = (p: string): 'file' | 'dir' | 'other' => {
      try {
        const st = statSync(p);
        return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
      } catch (err) {
        return usage(
          `--db ${v}: ${p} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
    };
    for (const name of readdirSync(v).sort()) {
      const p = join(v, name);
      const k = kind(p);
      if (k === 'file' && name.endsWith('.db')) found.push(p);
      else if (k === 'dir') {
        for (const f of readdirSync(p).sort())
          if (f.endsWith('.db') && kind(join(p, f)) === 'file') found.push(join(p, f));
      }
    }
    if (found.length === 0) usage(`--db ${v}: a directory without ledger files (*.db)`);
    paths.push(...found);
  }
  return { paths, merged };
}

/** One ledger's anchors as the command resolved them, and what it said about the defaults. */
export interface LedgerAnchors {
  dbPath: string;
  checkpointLog: string | undefined;
  trusted: TrustedKey[];
  /** The checkpoint log's path when it was taken from beside the database (no --checkpoints). */
  logBeside: string | undefined;
  /** The public key's path when it was taken from beside the database (no --public-key). */
  keyBeside: string | undefined;
}

/**
 * Anchors of each ledger: `--checkpoints` once per ledger, in the order of the ledgers (each
 * instance has its own log), else the log beside each database; `--public-key` trusted for
 * every ledger (each checkpoint names its key id), else the key beside each database.
 */
export function resolveAnchors(
  paths: readonly string[],
  checkpoints: readonly string[] | undefined,
  publicKeys: readonly string[] | undefined,
): LedgerAnchors[] {
  if (checkpoints && checkpoints.length > 0 && checkpoints.length !== paths.length)
    usage(
      `--checkpoints must be given once per ledger, in the same order (${paths.length} ledger(s), ${checkpoints.length} --checkpoints)`,
    );
  const given = publicKeys && publicKeys.length > 0 ? publicKeys.map(loadTrustedKey) : undefined;
  return paths.map((dbPath, i) => {
    let checkpointLog = checkpoints?.[i];
    let logBeside: string | undefined;
    if (checkpointLog === undefined && existsSync(defaultCheckpointLogPath(dbPath))) {
      checkpointLog = logBeside = defaultCheckpointLogPath(dbPath);
    }
    let trusted: TrustedKey[];
    let keyBeside: string | undefined;
    if (given) {
      trusted = given;
    } else {
      const { publicPath } = generatedSigningKeyPaths(dbPath);
      trusted = existsSync(publicPath) ? [loadTrustedKey(publicPath)] : [];
      if (trusted.length > 0) keyBeside = publicPath;
    }
    return { dbPath, checkpointLog, trusted, logBeside, keyBeside };
  });
}
