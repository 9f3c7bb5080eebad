import { canonicalRecord, chainHashHex, leafHashHex } from '../audit/canonical.js';
import type { Checkpoint } from '../audit/checkpoint.js';
import type { Manifest, ManifestFile } from './bundle-manifest.js';
import { csvRecords, scanLines } from './line-scan.js';
import { RowFormatError, type RowCodec } from './row-codec.js';
import type { BundleProblem } from './verify-export.js';

const HEX64 = /^[0-9a-f]{64}$/;

/** Checks a file's bytes and row count against its manifest entry. */
export type FileCheck = (
  f: ManifestFile,
  s: { bytes: number; sha256: string },
  rows: number,
) => void;

/**
 * Recomputes a bundle's hash chain from the anchor, row by row across the record files and then
 * over the tail leaves, and reports where it breaks: seq order, each file's `chainAtEnd`, every
 * signed checkpoint on the way and finally the sealing one. After a mismatch it resynchronises
 * on the signed chain, so each checkpoint-to-checkpoint segment is judged on its own.
 */
export class ChainWalk {
  rows = 0;
  readonly #m: Manifest;
  readonly #signed: Map<number, Checkpoint>;
  readonly #report: (p: BundleProblem) => void;
  #chain: string;
  #expected: number;
  #lastGood: number;
  #broken = false;
  #outliers = 0;
  readonly #types: Record<string, number> = {};
  readonly #from: number;
  readonly #to: number;

  constructor(m: Manifest, signed: Map<number, Checkpoint>, report: (p: BundleProblem) => void) {
    this.#m = m;
    this.#signed = signed;
    this.#report = report;
    this.#chain = m.link?.anchor.chain ?? '';
    this.#expected = m.range?.firstSeq ?? 1;
    this.#lastGood = (m.range?.firstSeq ?? 1) - 1;
    this.#from = Date.parse(m.query.from);
    this.#to = Date.parse(m.query.to);
    const anchorCp = m.link ? signed.get(m.link.anchor.seq) : undefined;
    if (m.link && anchorCp && anchorCp.chain !== m.link.anchor.chain) {
      this.#fail(
        m.link.anchor.seq,
        `the anchor chain of seq ${m.link.anchor.seq} differs from checkpoint #${anchorCp.n}`,
      );
    }
  }

  lost(f: ManifestFile): void {
    this.#broken = true;
    if (f.lastSeq !== undefined) this.#expected = f.lastSeq + 1;
  }

  file(f: ManifestFile, codec: RowCodec, path: string, check: FileCheck): void {
    let rows = 0;
    let first: number | undefined;
    let last: number | undefined;
    let header = codec.header !== null;
    const onRow = (text: string, line: number): void => {
      if (header) {
        header = false;
        if (text !== codec.header)
          this.#report({
            class: 'row',
            file: f.name,
            line,
            detail: `${f.name}: unexpected header line`,
          });
        return;
      }
      if (text === '') {
        this.#report({
          class: 'row',
          file: f.name,
          line,
          detail: `${f.name} line ${line}: empty line`,
        });
        return;
      }
      rows += 1;
      this.rows += 1;
      let r;
      try {
        r = codec.decode(text);
      } catch (err) {
        const detail = err instanceof RowFormatError ? err.message : String(err);
        this.#report({
          class: 'row',
          file: f.name,
          line,
          detail: `${f.name} line ${line}: ${detail}`,
        });
        this.#broken = true;
        this.#expected += 1;
        return;
      }
      first ??= r.seq;
      last = r.seq;
      if (r.seq !== this.#expected) {
        this.#report({
          class: 'seq',
          file: f.name,
          line,
          seq: r.seq,
          detail:
            r.seq < this.#expected
              ? `${f.name} line ${line}: seq ${r.seq} after seq ${this.#expected - 1} (reordered or repeated row)`
              : `${f.name} line ${line}: seq ${r.seq} where ${this.#expected} was due (rows ${this.#expected}..${r.seq - 1} missing)`,
        });
        this.#broken = true;
      }
      this.#expected = r.seq + 1;
      this.#types[r.type] = (this.#types[r.type] ?? 0) + 1;
      if (r.type === 'ledger.discontinuity') {
        this.#report({
          class: 'discontinuity',
          file: f.name,
          line,
          seq: r.seq,
          detail: `${f.name} line ${line}: seq ${r.seq} is a ledger.discontinuity: the service was started over a ledger that failed its start-up check`,
        });
      }
      if (r.time < this.#from || r.time >= this.#to) this.#outliers += 1;
      this.#step(r.seq, leafHashHex(canonicalRecord(r)));
    };
    const s = scanLines(path, codec.format === 'csv' ? csvRecords(onRow) : onRow);
    check(f, s, rows);
    if (first !== f.firstSeq || last !== f.lastSeq) {
      this.#report({
        class: 'manifest',
        file: f.name,
        detail: `${f.name} holds seq ${first ?? '-'}..${last ?? '-'}, the manifest states ${f.firstSeq ?? '-'}..${f.lastSeq ?? '-'}`,
      });
    }
    if (!this.#broken && f.chainAtEnd !== undefined && f.chainAtEnd !== this.#chain) {
      this.#fail(last ?? 0, `the chain at the end of ${f.name} differs from the manifest's`);
    }
  }

  tail(f: ManifestFile, path: string, check: FileCheck): void {
    const link = this.#m.link;
    if (!link) return;
    const lastSeq = this.#m.range?.lastSeq ?? 0;
    if (this.#expected !== lastSeq + 1) {
      this.#report({
        class: 'seq',
        seq: this.#expected,
        detail: `the data rows end before seq ${lastSeq}, the end of the range`,
      });
      this.#broken = true;
    }
    this.#expected = link.tail.fromSeq;
    let rows = 0;
    const s = scanLines(path, (text, line) => {
      rows += 1;
      if (!HEX64.test(text)) {
        this.#report({
          class: 'row',
          file: f.name,
          line,
          detail: `${f.name} line ${line}: not a leaf hash`,
        });
        this.#broken = true;
      }
      this.#step(this.#expected++, text);
    });
    check(f, s, rows);
    if (rows !== link.tail.toSeq - link.tail.fromSeq + 1) {
      this.#report({
        class: 'manifest',
        file: f.name,
        detail: `${f.name} holds ${rows} leaf hashes for seq ${link.tail.fromSeq}..${link.tail.toSeq}`,
      });
    }
  }

  /** True when the chain reached the sealing checkpoint's signed chain. */
  finish(): boolean {
    const m = this.#m;
    if (m.range) {
      if (this.rows !== m.range.records) {
        this.#report({
          class: 'manifest',
          detail: `${this.rows} data rows, the manifest states ${m.range.records}`,
        });
      }
      if (this.#outliers !== m.range.timeOutliers) {
        this.#report({
          class: 'manifest',
          detail: `${this.#outliers} rows outside the time window, the manifest states ${m.range.timeOutliers}`,
        });
      }
    } else if (this.rows > 0) {
      this.#report({
        class: 'manifest',
        detail: `${this.rows} data rows in a bundle whose manifest states no range`,
      });
    }
    const counted = Object.entries(this.#types).sort();
    const stated = Object.entries(m.countsByType).sort();
    if (JSON.stringify(counted) !== JSON.stringify(stated)) {
      this.#report({ class: 'manifest', detail: 'row counts per type differ from the manifest' });
    }
    const link = m.link;
    if (!link) return false;
    const cp = this.#signed.get(link.sealedBy.seq);
    if (!cp || cp.n !== link.sealedBy.n) {
      this.#fail(
        link.sealedBy.seq,
        `the sealing checkpoint #${link.sealedBy.n} is not among the authentic checkpoints`,
      );
      return false;
    }
    if (this.#expected !== cp.seq + 1) {
      this.#fail(
        cp.seq,
        `the chain ends at seq ${this.#expected - 1}, not at the sealing checkpoint's seq ${cp.seq}`,
      );
      return false;
    }
    return !this.#broken && this.#chain === cp.chain;
  }

  #step(seq: number, leaf: string): void {
    this.#chain = chainHashHex(this.#chain, leaf);
    const cp = this.#signed.get(seq);
    if (!cp) return;
    if (cp.chain !== this.#chain) {
      this.#fail(
        seq,
        `the recomputed chain of seq ${this.#lastGood + 1}..${seq} does not match checkpoint #${cp.n}: a row in that range was edited, dropped, added or reordered`,
      );
      this.#chain = cp.chain; // resynchronise: later segments are judged on their own
    }
    this.#lastGood = seq;
  }

  #fail(seq: number, detail: string): void {
    this.#broken = true;
    this.#report({ class: 'chain', seq, detail });
  }
}
