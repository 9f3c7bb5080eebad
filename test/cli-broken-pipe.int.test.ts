import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLedger, type Built } from './audit/helpers.js';
import { DIST_TIMEOUT_MS, ensureDist, ROOT } from './audit/dist.js';

const CLI = join(ROOT, 'dist', 'cli.js');

let built: Built;
beforeAll(() => {
  ensureDist();
  built = buildLedger(20_000);
}, DIST_TIMEOUT_MS);
afterAll(() => rmSync(built.dir, { recursive: true, force: true }));

/** Runs the CLI with its stdout read like `| head -n 1`: the reader closes after the first line. */
function runIntoHead(
  args: string[],
): Promise<{ code: number | null; signal: string | null; stderr: string; firstLine: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let out = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) child.stdout.destroy(); // the reader goes away mid-stream
    });
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stderr, firstLine: out.split('\n')[0] ?? '' }),
    );
  });
}

describe('CLI output into a closed pipe', () => {
  it('audit list ends quietly when its reader goes away', async () => {
    const r = await runIntoHead(['audit', 'list', '--db', built.dbPath]);
    expect(JSON.parse(r.firstLine)).toMatchObject({ seq: 1, type: 'ledger.genesis' });
    expect(r.stderr).not.toMatch(/EPIPE|Error|at /);
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
  }, 60_000);
});
