import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const NODE_SH = resolve('.ci/node.sh');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A directory holding a `node` that reports `version` (as `node -p` and `node --version`). */
function fakeNode(version: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-ci-node-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'bin'));
  const node = join(dir, 'bin', 'node');
  writeFileSync(
    node,
    `#!/bin/sh\nif [ "$1" = "--version" ]; then echo v${version}; else echo ${version}; fi\n`,
  );
  chmodSync(node, 0o755);
  return dir;
}

/** Runs `script` in bash after sourcing .ci/node.sh, with only `pathDirs` (and /usr/bin:/bin). */
function bash(script: string, pathDirs: string[], env: Record<string, string> = {}): string {
  return execFileSync('bash', ['-c', `source "${NODE_SH}"; ${script}`], {
    encoding: 'utf8',
    env: { PATH: [...pathDirs, '/usr/bin', '/bin'].join(':'), ...env },
  });
}

describe('.ci/node.sh', () => {
  it.each([
    ['22.23.5', true],
    ['22.15.0', true],
    ['22.12.0', false], // below the floor the OpenTelemetry packages need
    ['20.20.2', false], // end of life
    ['18.19.0', false], // Debian bookworm's
    ['24.1.0', false], // newer, but not the major the image ships
    ['23.11.0', false],
  ])('the machine node %s is used as it is: %s', (version, ok) => {
    const dir = fakeNode(version);
    expect(bash('ci_node_ok && echo yes || echo no', [join(dir, 'bin')]).trim()).toBe(
      ok ? 'yes' : 'no',
    );
  });

  it.runIf(arch() === 'x64')(
    'a machine with Node 24 gets the pinned Node 22 first on PATH (from the cache, no download)',
    () => {
      const machine = fakeNode('24.1.0');
      const cache = mkdtempSync(join(tmpdir(), 'tw-ci-cache-'));
      dirs.push(cache);
      const version = /^NODE_VERSION=(\S+)$/m.exec(
        execFileSync('cat', [NODE_SH], { encoding: 'utf8' }),
      )?.[1];
      const pinned = join(cache, `node-v${version}-linux-x64`);
      mkdirSync(join(pinned, 'bin'), { recursive: true });
      const node = join(pinned, 'bin', 'node');
      writeFileSync(node, `#!/bin/sh\necho v${version}\n`);
      chmodSync(node, 0o755);
      const out = bash(
        'ci_install_node && command -v node && echo "$npm_config_nodedir"',
        [join(machine, 'bin')],
        { TOKENWATCH_CI_CACHE: cache },
      );
      expect(out).toContain('is not Node 22');
      const lines = out.trim().split('\n');
      expect(lines.at(-2)).toBe(node);
      expect(lines.at(-1)).toBe(pinned);
    },
  );
});
