import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/**
 * Timeout for a hook or test that calls ensureDist(): after a source edit it runs tsc (or waits
 * up to 170 s for another worker's build) on a shared 2-core machine, far beyond vitest's
 * default 5-10 s.
 */
export const DIST_TIMEOUT_MS = 240_000;

/**
 * Makes sure dist/ holds a build of the audit code and the CLI at least as new as the sources
 * (`npm test` builds first; a lone `vitest run test/audit` may not have). Child processes run
 * the compiled JavaScript: plain `node` cannot run the TypeScript sources.
 */
export function ensureDist(): void {
  if (!stale()) return;
  // Test files run in parallel workers: one builds, the others wait (mkdir is atomic).
  const lock = join(
    tmpdir(),
    `tokenwatch-dist-build-${Buffer.from(ROOT).toString('hex').slice(-16)}`,
  );
  const deadline = Date.now() + 170_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`waited too long for ${lock}`);
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 300_000) rmdirSync(lock); // left by a killed run
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    // tsc emits even when files in progress elsewhere fail to type-check.
    if (stale()) {
      spawnSync(
        process.execPath,
        [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
        {
          cwd: ROOT,
          stdio: 'ignore',
        },
      );
    }
  } finally {
    rmdirSync(lock);
  }
  if (stale()) throw new Error('dist/ could not be built: run npx tsc -p tsconfig.build.json');
}

function stale(): boolean {
  // All of src/: the CLI's `report` and `serve` run the compliance, keyspace and correlator code.
  const watched = sources(join(ROOT, 'src'));
  return watched.some((src) => {
    const out = join(ROOT, 'dist', relative(join(ROOT, 'src'), src).replace(/\.ts$/, '.js'));
    return !existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs;
  });
}

/** Runs `node dist/cli.js ARGS`. */
export function cli(
  args: string[],
  input?: string,
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    input,
    env: { ...process.env, TOKENWATCH_HMAC_KEY: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
