/**
 * A/B of scenario 6's append measurement (src/bench/scenarios.ts ledgerAppendVerify, without the
 * verify) between builds of tokenwatch in their own directories (each a worktree with `dist/`
 * built), alternating builds round by round so both see the same machine load:
 *
 *   node --experimental-strip-types --no-warnings scripts/append-ab.ts ROUNDS RECORDS \
 *     before=/work/wt/ab-before after=/work/wt/ab-head
 *
 * Every run is a fresh process that applies the process settings `tokenwatch serve` applies (this
 * checkout's dist/bench/serve-runtime.js, the same for every build), measures the INSERT-only
 * ceiling (ledgerCeilings), then appends RECORDS records through the build's Ledger (batches of
 * 1000, synchronous=FULL, writer thread, batch seals) with the build's appendBenchRecords. It
 * reports append records/s, the ratio to the same run's INSERT ceiling, and the event-loop
 * thread's CPU time per record (process.threadCpuUsage): on a shared machine the wall-clock
 * figures move with the load, the CPU time much less. The first build is the baseline of the
 * paired ratios. Self-contained (node builtins) so that Node runs it with type stripping.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface Run {
  appendPerSec: number;
  insertPerSec: number;
  ratio: number;
  cpuUsPerRecord: number;
  load: number;
}

interface LedgerLike {
  close(): void;
}

const here = fileURLToPath(import.meta.url);
const self = resolve(here, '..', '..');

function load(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function child(dir: string, records: number): Promise<Run> {
  const mod = (p: string): Promise<Record<string, unknown>> =>
    import(pathToFileURL(join(dir, 'dist', p)).href) as Promise<Record<string, unknown>>;
  const runtime = (await import(pathToFileURL(join(self, 'dist/bench/serve-runtime.js')).href)) as {
    applyServeRuntime: () => string | undefined;
  };
  runtime.applyServeRuntime();
  const { Ledger } = (await mod('audit/ledger.js')) as {
    Ledger: new (o: Record<string, unknown>) => LedgerLike;
  };
  const { keyIdOf } = (await mod('audit/signing-keys.js')) as {
    keyIdOf: (k: unknown) => string;
  };
  const bench = (await mod('bench/ledger-ceilings.js')) as {
    ledgerCeilings: (records: number, batch: number) => { insertPerSec: number };
    appendBenchRecords: (ledger: LedgerLike, records: number) => Promise<number>;
  };
  const before = load();
  const { insertPerSec } = bench.ledgerCeilings(records, 1000);
  const tmp = mkdtempSync(join(tmpdir(), 'tw-append-ab-'));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const ledger = new Ledger({
    path: join(tmp, 'audit.db'),
    batchSize: 1000,
    flushIntervalMs: 25,
    maxPending: records + 10,
    hmacKeyIds: ['k1'],
    signingKey: { keyId: keyIdOf(publicKey), privateKey, publicKey },
  });
  const cpu0 = process.threadCpuUsage();
  const secs = await bench.appendBenchRecords(ledger, records);
  const cpu = process.threadCpuUsage(cpu0);
  ledger.close();
  rmSync(tmp, { recursive: true, force: true });
  const appendPerSec = records / secs;
  return {
    appendPerSec: Math.round(appendPerSec),
    insertPerSec,
    ratio: appendPerSec / insertPerSec,
    cpuUsPerRecord: (cpu.user + cpu.system) / records,
    load: before,
  };
}

const args = process.argv.slice(2);
if (args[0] === '--child') {
  const run = await child(args[1] as string, Number(args[2]));
  process.stdout.write(`${JSON.stringify(run)}\n`);
} else {
  const rounds = Number(args[0] ?? 10);
  const records = Number(args[1] ?? 200_000);
  const builds = args.slice(2).map((a) => {
    const [label = '', dir = ''] = a.split('=');
    return { label, dir: resolve(dir), runs: [] as Run[] };
  });
  if (builds.length < 2 || !(rounds > 0) || !(records > 0)) {
    process.stderr.write('usage: append-ab.ts ROUNDS RECORDS label=dir label=dir [...]\n');
    process.exit(2);
  }
  for (let r = 0; r < rounds; r++) {
    // The order rotates too: a run inherits the page cache and the heat of the one before it.
    for (let i = 0; i < builds.length; i++) {
      const b = builds[(i + r) % builds.length] as (typeof builds)[number];
      const c = spawnSync(
        process.execPath,
        [...process.execArgv, here, '--child', b.dir, `${records}`],
        {
          encoding: 'utf8',
        },
      );
      if (c.status !== 0) throw new Error(`${b.label}: ${c.stderr}`);
      const run = JSON.parse(c.stdout.trim().split('\n').at(-1) ?? '{}') as Run;
      b.runs.push(run);
      process.stdout.write(
        `round ${r} ${b.label}: append ${run.appendPerSec}/s, INSERT ${run.insertPerSec}/s, ` +
          `ratio ${run.ratio.toFixed(3)}, event loop ${run.cpuUsPerRecord.toFixed(2)} us CPU/record, load ${run.load}\n`,
      );
    }
  }
  const loads = builds.flatMap((b) => b.runs.map((x) => x.load));
  process.stdout.write(
    `\n${rounds} rounds of ${records} records; 1-minute load before each run: median ${median(loads).toFixed(2)}, ` +
      `min ${Math.min(...loads)}, max ${Math.max(...loads)}\n`,
  );
  for (const b of builds) {
    const m = (f: (x: Run) => number): number => median(b.runs.map(f));
    process.stdout.write(
      `${b.label}: median append ${Math.round(m((x) => x.appendPerSec))}/s, ratio ${m((x) => x.ratio).toFixed(3)}, ` +
        `event loop ${m((x) => x.cpuUsPerRecord).toFixed(2)} us CPU/record\n`,
    );
  }
  const base = builds[0] as (typeof builds)[number];
  for (const b of builds.slice(1)) {
    const paired = (f: (x: Run) => number): string => {
      const q = b.runs.map((x, i) => f(x) / f(base.runs[i] as Run));
      return `${median(q).toFixed(3)} [${q.map((v) => v.toFixed(3)).join(' ')}]`;
    };
    process.stdout.write(
      `${b.label}/${base.label} paired by round, median [each]: append ${paired((x) => x.appendPerSec)}; ` +
        `ratio ${paired((x) => x.ratio)}; event-loop CPU/record ${paired((x) => x.cpuUsPerRecord)}\n`,
    );
  }
}
