import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { canonicalJson } from '../../src/audit/canonical.js';
import type { Checkpointer } from '../../src/audit/checkpointer.js';
import type { Ledger } from '../../src/audit/ledger.js';
import type { AuditInput } from '../../src/audit/record.js';
import { loadTrustedKey, type TrustedKey } from '../../src/audit/signing-keys.js';
import type { MergedLedger } from '../../src/audit/verify-merged.js';
import { FakeClock, openLedger, recomputeChain, tamper, tempDir } from './helpers.js';

/**
 * Ledgers of several coordinated instances (issue #20), written through the real Ledger and
 * Checkpointer, each in its own directory with its own signing key and checkpoint log, as
 * separate `tokenwatch serve` processes would leave them. Records carry the ownership attrs of
 * docs/ha-evidence.md. Times are ms after T0, one shared clock (scripts go forward in time).
 */
export const T0 = Date.UTC(2026, 0, 1);

export interface InstanceFiles {
  name: string;
  dir: string;
  dbPath: string;
  logPath: string;
  publicKeyPath: string;
  trusted: TrustedKey[];
}

interface Open {
  ledger: Ledger;
  checkpointer: Checkpointer;
  files: InstanceFiles;
}

export class Fleet {
  readonly clock = new FakeClock(T0);
  readonly #open = new Map<string, Open>();

  /** Opens the ledger of instance `name` (genesis at the current clock). */
  start(...names: string[]): this {
    for (const name of names) {
      const dir = tempDir(`tw-${name}-`);
      const { ledger, checkpointer } = openLedger(dir, { clock: this.clock, checkpointEvery: 5 });
      this.#open.set(name, {
        ledger,
        checkpointer,
        files: {
          name,
          dir,
          dbPath: join(dir, 'audit.db'),
          logPath: join(dir, 'checkpoints.jsonl'),
          publicKeyPath: join(dir, 'signing.pub'),
          trusted: [],
        },
      });
    }
    return this;
  }

  append(name: string, ms: number, input: Omit<AuditInput, 'time'>): this {
    const o = this.#open.get(name);
    if (!o) throw new Error(`no instance ${name}`);
    this.clock.t = Math.max(this.clock.t, T0 + ms);
    o.ledger.append({ ...input, time: T0 + ms });
    o.ledger.flush();
    return this;
  }

  acquired(
    name: string,
    ms: number,
    node: string,
    epoch: number,
    previous: [number, string] | null,
    from: string | null,
    replayed = 0,
  ): this {
    return this.append(name, ms, {
      source: 'system',
      type: 'ownership.acquired',
      attrs: {
        node,
        epoch,
        instance: name,
        ledgerId: this.#open.get(name)?.ledger.ledgerId,
        previous: previous && { epoch: previous[0], instance: previous[1] },
        from,
        replayed,
      },
    });
  }

  released(
    name: string,
    ms: number,
    node: string,
    epoch: number,
    through: string,
    reason = 'handover',
  ): this {
    return this.append(name, ms, {
      source: 'system',
      type: 'ownership.released',
      attrs: { node, epoch, instance: name, through, reason },
    });
  }

  fenced(name: string, ms: number, node: string, epoch: number): this {
    return this.append(name, ms, {
      source: 'system',
      type: 'ownership.fenced',
      attrs: { node, epoch, instance: name, reason: 'lease_deadline' },
    });
  }

  /**
   * A token record as an owner writes it: `pos` "e.n.k.i" and the writer's `epoch` (default:
   * the marker's epoch in pos; a replayed event keeps its position under the replaying owner's
   * epoch), or neither (an uncoordinated instance, a reconcile).
   */
  token(
    name: string,
    ms: number,
    node: string,
    fp: number,
    pos?: string,
    type = 'token.written',
    epoch = pos === undefined ? undefined : Number(pos.split('.')[0]),
  ): this {
    return this.append(name, ms, {
      source: 'redis',
      type,
      kind: 'access_token',
      fingerprint: `hmac-sha256:k1:${fp.toString(16).padStart(64, '0')}`,
      attrs: {
        node,
        ttlMs: 3_600_000,
        ...(pos === undefined ? {} : { pos, epoch }),
      },
    });
  }

  gap(name: string, ms: number, node: string, startMs: number, endMs: number): this {
    return this.append(name, ms, {
      source: 'redis',
      type: 'keyspace.gap',
      attrs: {
        node,
        start: T0 + startMs,
        end: T0 + endMs,
        durationMs: endMs - startMs,
        reason: 'takeover_without_replay',
      },
    });
  }

  /** Any record (the instance is alive: its ledger goes on). */
  note(name: string, ms: number): this {
    return this.append(name, ms, { source: 'system', type: 'system.note', attrs: { n: ms } });
  }

  /**
   * A consistent copy of instance `name`'s ledger as it is now (checkpointed first), with its
   * checkpoint log and public key, in `dir`: an older snapshot of the same ledger id. `trusted`
   * is empty until the instance's key is loaded (close()).
   */
  snapshot(name: string, dir: string): InstanceFiles {
    const o = this.#open.get(name);
    if (!o) throw new Error(`no instance ${name}`);
    o.checkpointer.checkpoint('interval');
    const files = {
      ...o.files,
      dir,
      dbPath: join(dir, 'audit.db'),
      logPath: join(dir, 'checkpoints.jsonl'),
      publicKeyPath: join(dir, 'signing.pub'),
    };
    const db = new Database(o.files.dbPath, { readonly: true });
    try {
      db.exec(`VACUUM INTO '${files.dbPath.replaceAll("'", "''")}'`);
    } finally {
      db.close();
    }
    copyFileSync(o.files.logPath, files.logPath);
    copyFileSync(o.files.publicKeyPath, files.publicKeyPath);
    return files;
  }

  /** Closes every ledger cleanly (shutdown checkpoint); the files by name. */
  close(): Record<string, InstanceFiles> {
    const out: Record<string, InstanceFiles> = {};
    for (const [name, o] of this.#open) {
      o.checkpointer.close();
      o.ledger.close();
      out[name] = { ...o.files, trusted: [loadTrustedKey(o.files.publicKeyPath)] };
    }
    this.#open.clear();
    return out;
  }
}

/** The merged-verify input of `files`, anchored by each one's own log and key. */
export function asMerged(...files: InstanceFiles[]): MergedLedger[] {
  return files.map((f) => ({ dbPath: f.dbPath, checkpointLog: f.logPath, trusted: f.trusted }));
}

/**
 * Appends a record at the end of a closed ledger as an attacker without the signing key would:
 * protective triggers dropped, chain recomputed; no checkpoint or seal covers it.
 */
export function forgeRecord(dbPath: string, time: number, type: string, attrs: object): void {
  tamper(dbPath, (db) => {
    const { seq } = db.prepare('SELECT MAX(seq) AS seq FROM records').get() as { seq: number };
    db.prepare(
      'INSERT INTO records (seq, time, source, type, kind, fingerprint, attrs, leaf, chain) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?)',
    ).run(seq + 1, time, 'system', type, canonicalJson(attrs), Buffer.alloc(32), Buffer.alloc(32));
    recomputeChain(db, seq + 1);
  });
}
