import { hash } from 'node:crypto';
import Database from 'better-sqlite3';
import { LEDGER_FORMAT_VERSION, canonicalRecord, chainHashHex, leafHashHex } from './canonical.js';
import { missingDetail, type Damage } from './damage.js';
import { LEAF_HINT_BYTES, leafMatches } from './leaf-hint.js';
import { canonicalOfCompact, decodeColumns, type StoredColumns } from './record-codec.js';

/** One slice of the ledger to verify (a worker's share). Plain data: it crosses threads. */
export interface RangeTask {
  dbPath: string;
  /** Seq range, inclusive. */
  from: number;
  to: number;
  /**
   * Chain hash (hex) the record at `from` must extend. Undefined: use the stored chain of the
   * record at from-1 (the chunk before verifies that one). Null: unanchored, skip that check.
   */
  anchor?: string | null;
  /** Signed checkpoints inside the range as [seq, chain hex], sorted by seq. */
  checkpoints: readonly (readonly [number, string])[];
  clockToleranceMs: number;
}

export interface RangeResult {
  from: number;
  to: number;
  rows: number;
  problems: Damage[];
  /** Problems beyond the ones kept in `problems`. */
  moreProblems: number;
  /** Seqs of checkpoints whose signed chain differs from the stored (verified) chain. */
  checkpointMismatches: { seq: number; stored: string; signed: string }[];
  /** Records whose time is earlier than the previous record's by more than the tolerance. */
  regressions: number;
  regressionSeqs: number[];
}

const MAX_PROBLEMS = 1000;
const REORDER_WINDOW = 256;
const REORDER_SEARCHES = 100;

const V = LEDGER_FORMAT_VERSION;
/** Rows per all(): the scan pages by seq (keyset), so a far-off seq costs one query, not one per 4096 seqs. */
const CHUNK = 4096;

/**
 * One text column per row: HEX(leaf) || HEX(chain) || NUL || canonical bytes, built by SQLite.
 * Reading seven text columns and two blobs into V8 costs more than all the hashing
 * (better-sqlite3 makes a Buffer per blob), so the format's canonical encoding is assembled in
 * SQL (attrs is stored as canonical JSON already) with n-ary concat(), which allocates once
 * where a chain of || copies the growing string at every step. The NUL is the leaf hash's
 * domain-separation prefix, so the hashed text is a plain slice. The stored leaf is 32 bytes
 * (rows before schema v5) or its 4-byte hint (record-codec.ts), so the chain is the last 64 hex
 * digits before the NUL.
 *
 * The quoted fields go through json_quote(), which escapes exactly as JSON.stringify does
 * (`"`, `\`, controls; json_quote(NULL) is `null`): an injective encoding, so text moved
 * between columns (from type into attrs, say) cannot concatenate to the bytes that were hashed.
 * Should SQLite ever escape some character differently, the row only fails the fast path: every
 * mismatch is re-checked field by field on the JS path before it is reported. Hex comes out in
 * upper case (lower() costs more in SQL than toLowerCase() in JS).
 *
 * The table is STRICT, but whoever edits the file can rebuild it without: a `time` stored as
 * text could carry `1000,"S",...` and shift every later field along while concatenating to the
 * very bytes that were hashed (json_quote only protects the quoted fields). So a row takes the
 * fast path only when every column has its declared type; otherwise, like a leaf or chain of
 * the wrong size, it comes back as `!hex(leaf)!hex(chain)` and is reported as modified.
 *
 * A compact row (attrs a BLOB, schema v5) comes back as `#hex(leaf)#hex(chain)#hex(attrs)`:
 * JS decodes it (record-codec.ts) and hashes the canonical text. Hex inside the one text
 * column, not a blob column: better-sqlite3 makes a Buffer per blob, which costs more.
 */
const SIZED = `length(leaf) IN (${LEAF_HINT_BYTES}, 32) AND length(chain) = 32`;
const TYPED = `typeof(time) = 'integer' AND typeof(source) = 'text' AND typeof(type) = 'text'
  AND typeof(kind) IN ('text', 'null') AND typeof(fingerprint) IN ('text', 'null')
  AND typeof(attrs) = 'text'`;
const COMPACT = `typeof(attrs) = 'blob' AND typeof(time) = 'integer'
  AND source IS NULL AND type IS NULL AND kind IS NULL AND fingerprint IS NULL`;
const ROWS_SQL = `SELECT seq, time,
  CASE WHEN ${SIZED} AND ${TYPED} THEN
    concat(hex(leaf), hex(chain), char(0), '[${V},', seq, ',', time, ',', json_quote(source), ',',
      json_quote(type), ',', json_quote(kind), ',', json_quote(fingerprint), ',', attrs, ']')
  WHEN ${SIZED} AND ${COMPACT} THEN concat('#', hex(leaf), '#', hex(chain), '#', hex(attrs))
  ELSE concat('!', lower(hex(leaf)), '!', lower(hex(chain))) END
FROM records WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ${CHUNK}`;

const HEX64 = /^[0-9a-f]{64}$/;
const LEAF_HEX = new RegExp(`^(?:[0-9a-f]{64}|[0-9a-f]{${LEAF_HINT_BYTES * 2}})$`);

interface Deferred {
  seq: number;
  leaf: string;
  chain: string;
  prev: string | null;
}

/**
 * Verifies records `from..to`: each record's content hashes to its stored leaf, and each stored
 * chain equals SHA-256(stored chain of the record before || leaf). By induction that proves the
 * whole chain from the anchor, yet every row is checked on its own, so slices run in parallel.
 * After a bad row the stored chain is adopted, so one edit is one finding, not a cascade.
 */
export function verifyRange(task: RangeTask, open?: Database.Database): RangeResult {
  const db = open ?? new Database(task.dbPath, { readonly: true, fileMustExist: true });
  const r: RangeResult = {
    from: task.from,
    to: task.to,
    rows: 0,
    problems: [],
    moreProblems: 0,
    checkpointMismatches: [],
    regressions: 0,
    regressionSeqs: [],
  };
  const problem = (d: Damage): void => {
    if (r.problems.length < MAX_PROBLEMS) r.problems.push(d);
    else r.moreProblems += 1;
  };
  // A link failure right after a moved row is that move, not a second edit: held back until the
  // leaf checks (some of which run after the scan) have classified every row.
  const linkProblems = new Map<number, Damage>();
  const reordered = new Set<number>();
  const linkProblem = (seq: number): void => {
    linkProblems.set(seq, {
      class: 'modified',
      seq,
      detail: `record ${seq}: stored chain hash is not SHA-256(previous chain || leaf)`,
    });
  };
  let reorderSearches = 0;
  const leafProblem = (seq: number, canon: string, storedLeaf: string): void => {
    if (reorderSearches++ < REORDER_SEARCHES) {
      const original = hashedAt(canon, seq, storedLeaf);
      if (original !== undefined) {
        reordered.add(seq);
        problem({
          class: 'reordered',
          seq,
          detail: `record at seq ${seq} was hashed as seq ${original}: rows were moved`,
        });
        return;
      }
    }
    problem({ class: 'modified', seq, detail: `record ${seq} does not match its leaf hash` });
  };

  let expect = task.from;
  try {
    let prevChain: string | null;
    let prevTime: number | undefined;
    if (task.anchor === undefined) {
      const before = db
        .prepare(
          'SELECT seq, time, lower(hex(chain)) AS chain FROM records WHERE seq < ? ORDER BY seq DESC LIMIT 1',
        )
        .get(task.from) as { seq: number; time: number; chain: string } | undefined;
      prevChain = before?.seq === task.from - 1 ? before.chain : null;
      prevTime = before?.time;
    } else {
      prevChain = task.anchor;
    }
    const cps = task.checkpoints;
    let ci = 0;
    const deferred: Deferred[] = [];
    const stmt = db.prepare(ROWS_SQL).raw(true);
    // CHUNK rows per all(): cheaper per row than iterate(), which crosses into native code once
    // per row, while memory stays bounded by the chunk.
    for (let from = task.from; from <= task.to;) {
      const rows = stmt.all(from, task.to) as [number, unknown, string][];
      from = rows.length < CHUNK ? Infinity : (rows[rows.length - 1]?.[0] ?? Infinity) + 1;
      for (const [seq, time, s] of rows) {
        r.rows += 1;
        if (seq < expect) {
          problem({
            class: 'reordered',
            seq,
            detail: `seq ${seq} is stored after seq ${expect - 1}`,
          });
          prevChain = null;
        } else if (seq > expect) {
          problem({
            class: 'missing',
            seq: expect,
            toSeq: seq - 1,
            detail: missingDetail(expect, seq - 1),
          });
          prevChain = null;
        }
        expect = seq + 1;
        if (typeof time === 'number') {
          if (prevTime !== undefined && time < prevTime - task.clockToleranceMs) {
            r.regressions += 1;
            if (r.regressionSeqs.length < 10) r.regressionSeqs.push(seq);
          }
          prevTime = time;
        }
        if (s.charCodeAt(0) === 33 /* ! */) {
          const [, l = '', c = ''] = s.split('!');
          const sized = LEAF_HEX.test(l) && HEX64.test(c);
          problem({
            class: 'modified',
            seq,
            detail: sized
              ? `record ${seq}: a column holds a value of the wrong type (the table was rebuilt without STRICT)`
              : `record ${seq}: leaf or chain is not of its stored size`,
          });
          prevChain = HEX64.test(c) ? c : null;
          continue;
        }
        let storedLeaf: string;
        let storedChain: string;
        let leaf: string;
        if (s.charCodeAt(0) === 35 /* # */) {
          const [, l = '', c = '', a = ''] = s.split('#', 4);
          storedLeaf = l.toLowerCase();
          storedChain = c.toLowerCase();
          try {
            leaf = leafHashHex(canonicalOfCompact(seq, time as number, Buffer.from(a, 'hex')));
          } catch (err) {
            problem({
              class: 'modified',
              seq,
              detail: `record ${seq}: compact attributes do not decode (${(err as Error).message})`,
            });
            prevChain = storedChain;
            continue;
          }
        } else {
          const nul = s.indexOf('\u0000');
          const hashes = s.slice(0, nul).toLowerCase();
          storedLeaf = hashes.slice(0, -64);
          storedChain = hashes.slice(-64);
          leaf = hash('sha256', s.slice(nul), 'hex');
        }
        while (ci < cps.length && (cps[ci]?.[0] ?? Infinity) < seq) ci++;
        for (; ci < cps.length && cps[ci]?.[0] === seq; ci++) {
          const signed = cps[ci]?.[1] ?? '';
          if (signed !== storedChain)
            r.checkpointMismatches.push({ seq, stored: storedChain, signed });
        }
        if (!leafMatches(leaf, storedLeaf)) {
          deferred.push({ seq, leaf: storedLeaf, chain: storedChain, prev: prevChain });
        } else if (prevChain !== null && chainHashHex(prevChain, leaf) !== storedChain) {
          linkProblem(seq);
        }
        prevChain = storedChain;
      }
    }
    if (expect <= task.to) {
      problem({
        class: 'missing',
        seq: expect,
        toSeq: task.to,
        detail: missingDetail(expect, task.to),
      });
    }
    if (deferred.length > 0) {
      const one = db.prepare(
        'SELECT seq, time, source, type, kind, fingerprint, attrs FROM records WHERE seq = ?',
      );
      for (const d of deferred) {
        const canon = canonicalRecord(decodeColumns(one.get(d.seq) as StoredColumns));
        const leaf = leafHashHex(canon);
        if (!leafMatches(leaf, d.leaf)) leafProblem(d.seq, canon, d.leaf);
        else if (d.prev !== null && chainHashHex(d.prev, leaf) !== d.chain) linkProblem(d.seq);
      }
    }
    for (const [seq, d] of linkProblems) if (!reordered.has(seq - 1)) problem(d);
  } catch (err) {
    // A damaged file (e.g. a flipped byte in a page header) stops SQLite mid-scan.
    problem({
      class: 'modified',
      seq: expect,
      toSeq: task.to,
      detail: `SQLite cannot read the file past seq ${expect - 1}: ${(err as Error).message}`,
    });
  } finally {
    if (!open) db.close();
  }
  return r;
}

/** The seq near `seq` under which `canon` hashes to `leaf`, if any (a moved row). */
function hashedAt(canon: string, seq: number, leaf: string): number | undefined {
  const prefix = `[${V},${seq},`;
  if (!canon.startsWith(prefix)) return undefined;
  const rest = canon.slice(prefix.length);
  for (let d = 1; d <= REORDER_WINDOW; d++) {
    for (const s of [seq - d, seq + d]) {
      if (s > 0 && leafMatches(leafHashHex(`[${V},${s},${rest}`), leaf)) return s;
    }
  }
  return undefined;
}
