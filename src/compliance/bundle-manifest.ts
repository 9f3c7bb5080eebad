import { sign, verify, type KeyObject } from 'node:crypto';
import type { SigningKey } from '../audit/signing-keys.js';
import { OCSF_MAPPING_VERSION } from './ocsf.js';
import { EXPORT_FORMATS, type ExportFormat } from './row-codec.js';

/**
 * The manifest of an evidence bundle (docs/compliance.md#evidence-bundles) and its detached
 * Ed25519 signature. The manifest names every file with its SHA-256, so the signature covers the
 * whole bundle; the rows themselves are linked to a signed ledger checkpoint by the hash chain.
 */

export const BUNDLE_FORMAT = 'tokenwatch-evidence-bundle';
export const BUNDLE_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';
export const CHECKPOINTS_FILE = 'checkpoints.jsonl';
export const TAIL_FILE = 'tail-leaves.txt';

/**
 * Domain separation: a manifest signature can never pass for a checkpoint signature made with
 * the same key (those start `tokenwatch checkpoint v1\n`), nor the other way round.
 */
const SIGNATURE_PREFIX = `tokenwatch export manifest v${BUNDLE_VERSION}\n`;

/** What a file of the bundle holds. */
export type FileRole = 'records' | 'checkpoints' | 'tail';

export interface ManifestFile {
  name: string;
  role: FileRole;
  /** Data rows (records), checkpoints, or leaf hashes in the file; header lines excluded. */
  rows: number;
  bytes: number;
  sha256: string;
  /** records files: first and last seq, and chain(lastSeq) so damage can be named per file. */
  firstSeq?: number;
  lastSeq?: number;
  chainAtEnd?: string;
}

export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  generator: { name: 'tokenwatch'; version: string };
  /** When the bundle was written (ISO 8601). */
  createdAt: string;
  ledgerId: string;
  ledgerFormatVersion: number;
  /** The request that produced the bundle: observed-time window [from, to), data format. */
  query: { from: string; to: string; format: ExportFormat };
  /** null when no record was observed in the window. */
  range: {
    firstSeq: number;
    lastSeq: number;
    records: number;
    /** Records inside the seq range whose time is outside the window (clock steps back). */
    timeOutliers: number;
    firstTime: string;
    lastTime: string;
  } | null;
  /** Rows per record type. */
  countsByType: Record<string, number>;
  /** OCSF mapping version of `ocsf` bundles (verify-export re-derives events of this version). */
  ocsfMapping?: number;
  /**
   * How the range links to a signed checkpoint: the chain hash it extends (`anchor`), and the
   * checkpoint that seals it (`sealedBy`: the first with seq >= lastSeq; the leaf hashes of the
   * records between are in tail-leaves.txt).
   */
  link: {
    anchor: {
      seq: number;
      chain: string;
      source: 'genesis' | 'record' | 'retention_purge' | 'archived';
    };
    sealedBy: { n: number; seq: number; chain: string; keyId: string; time: number };
    tail: { fromSeq: number; toSeq: number };
  } | null;
  /** Ed25519 key that signed manifest.sig (and, normally, the checkpoints): keyIdOf(public key). */
  signingKeyId: string;
  files: ManifestFile[];
}

/** The bytes of manifest.json (pretty, stable: it is what the signature covers). */
export function manifestBytes(m: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(m, null, 2)}\n`, 'utf8');
}

/** manifest.sig: base64 of the Ed25519 signature over prefix || manifest.json bytes, then `\n`. */
export function signManifest(bytes: Buffer, key: SigningKey): string {
  const message = Buffer.concat([Buffer.from(SIGNATURE_PREFIX, 'utf8'), bytes]);
  return `${sign(null, message, key.privateKey).toString('base64')}\n`;
}

/** True when `sigText` (manifest.sig contents) is a valid signature of `bytes` by `publicKey`. */
export function manifestSignatureValid(
  bytes: Buffer,
  sigText: string,
  publicKey: KeyObject,
): boolean {
  const sig = Buffer.from(sigText.trim(), 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(
      null,
      Buffer.concat([Buffer.from(SIGNATURE_PREFIX, 'utf8'), bytes]),
      publicKey,
      sig,
    );
  } catch {
    return false;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Parses and shape-checks manifest.json; a message when it is not a manifest this version reads. */
export function parseManifest(bytes: Buffer): Manifest | string {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'manifest.json is not JSON';
  }
  if (typeof v !== 'object' || v === null) return 'manifest.json is not an object';
  const m = v as Partial<Manifest>;
  if (m.format !== BUNDLE_FORMAT) return `not a ${BUNDLE_FORMAT} manifest`;
  if (m.version !== BUNDLE_VERSION) return `unsupported bundle version ${String(m.version)}`;
  if (typeof m.ledgerId !== 'string' || typeof m.signingKeyId !== 'string')
    return 'ledgerId or signingKeyId missing';
  if (!m.query || !EXPORT_FORMATS.includes(m.query.format))
    return 'query.format missing or unknown';
  if (Number.isNaN(Date.parse(m.query.from)) || Number.isNaN(Date.parse(m.query.to)))
    return 'query window is not ISO 8601';
  if (m.query.format === 'ocsf' && m.ocsfMapping !== OCSF_MAPPING_VERSION) {
    return `OCSF mapping version ${String(m.ocsfMapping)} is not the one this tokenwatch re-derives (${OCSF_MAPPING_VERSION})`;
  }
  if (!Array.isArray(m.files) || typeof m.countsByType !== 'object' || m.countsByType === null)
    return 'files or countsByType missing';
  for (const f of m.files) {
    if (typeof f?.name !== 'string' || !SAFE_NAME.test(f.name))
      return 'a file name is not a plain name';
    if (!['records', 'checkpoints', 'tail'].includes(f.role)) return `${f.name}: unknown role`;
    if (
      typeof f.sha256 !== 'string' ||
      !Number.isSafeInteger(f.bytes) ||
      !Number.isSafeInteger(f.rows)
    )
      return `${f.name}: sha256, bytes or rows missing`;
  }
  if ((m.range === null) !== (m.link === null) || m.range === undefined || m.link === undefined)
    return 'range and link must both be set or both be null';
  if (m.link && (!HEX64.test(m.link.anchor.chain) || !HEX64.test(m.link.sealedBy.chain)))
    return 'link hashes are not hex';
  return m as Manifest;
}
