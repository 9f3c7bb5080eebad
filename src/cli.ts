#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, isTokenwatchError } from './errors.js';
import type { ErrorCode } from './errors.js';
import { endQuietlyOnBrokenPipe } from './cli/broken-pipe.js';
import { usage, type Command } from './cli/usage.js';
import { VERSION } from './version.js';

const USAGE = `tokenwatch ${VERSION}: observability and SOC 2 auditing for OAuth tokens in Redis

Usage:
  tokenwatch serve [--config FILE] [--accept-discontinuity]
                                              run the service (default config: config/tokenwatch.yaml);
                                              exit 3 when the ledger fails the start-up check;
                                              --accept-discontinuity starts anyway and records the
                                              break in the ledger (a signed ledger.discontinuity)
  tokenwatch audit list --db PATH [--type T] [--since ISO] [--limit N] [--json]
                                              print audit records, one JSON object per line
  tokenwatch verify --db PATH [--checkpoints FILE] [--public-key FILE]... [--archive DIR] [--threads N] [--json]
                                              check the hash chain and signed checkpoints
                                              (exit 0 intact, 1 damaged: class and first seq)
  tokenwatch verify --db PATH|DIR --db PATH... [--checkpoints FILE]... [--node NAME]... [--coverage]
                                              several instances' ledgers: each as above, then
                                              coverage of every node (exit 1 naming node,
                                              epoch and span when a ledger is missing)
  tokenwatch keygen --out DIR                 write an Ed25519 checkpoint signing key pair
  tokenwatch audit-hash VALUE [--config FILE] fingerprint of VALUE under every HMAC key id
                                              (VALUE - reads stdin)
  tokenwatch export --db PATH --from ISO --to ISO --format csv|jsonl|ocsf --out DIR
                  [--signing-key FILE]        write a signed evidence bundle of a period; several
                                              --db: one bundle each and merged.json (coverage,
                                              duplicates), refused when coverage is incomplete
  tokenwatch verify-export DIR --public-key FILE [--checkpoints FILE] [--json]
                                              check a bundle on its own (exit 0 intact, 1 not)
  tokenwatch report --db PATH --from ISO --to ISO --format html|json [--out FILE]
                  [--public-key FILE] [--checkpoints FILE] [--config FILE]
                                              the SOC 2 report of a period; several --db (or
                                              a directory): the merged report of several
                                              instances (ownership, coverage, deduplication)
  tokenwatch --version | --help
`;

/** Subcommands, loaded lazily so `serve` does not pay for report code and vice versa. */
/** Codes that exit 2: the command line or the config is wrong, not the data. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_USAGE',
  'ERR_CONFIG_INVALID',
  'ERR_CONFIG_NOT_FOUND',
  'ERR_EXPORT_TARGET_EXISTS',
]);

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => {
    const { serve } = await import('./main.js');
    return async (args) => {
      const { values } = parseArgs({
        args,
        options: { config: { type: 'string' }, 'accept-discontinuity': { type: 'boolean' } },
        strict: true,
      });
      try {
        await serve(values.config, { acceptDiscontinuity: values['accept-discontinuity'] });
      } catch (err) {
        // The ledger failed the start-up check (or the log is ahead of it): refused, exit 3, so a
        // supervisor can tell evidence damage from bad config (2) and crashes (1).
        if (isTokenwatchError(err) && err.code === 'ERR_LEDGER_INTEGRITY') {
          console.error(`tokenwatch: ${err.message}`);
          return 3;
        }
        throw err;
      }
      return -1; // keeps running; signals end it
    };
  },
  'audit list': async () => (await import('./cli/audit-list.js')).auditList,
  verify: async () => (await import('./cli/verify.js')).verify,
  keygen: async () => (await import('./cli/keygen.js')).keygen,
  'audit-hash': async () => (await import('./cli/audit-hash.js')).auditHash,
  export: async () => (await import('./cli/export.js')).exportCommand,
  'verify-export': async () => (await import('./cli/verify-export.js')).verifyExportCommand,
  report: async () => (await import('./cli/report.js')).reportCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (command !== 'serve') endQuietlyOnBrokenPipe();
  const two = `${command} ${rest[0] ?? ''}`;
  if (COMMANDS[two]) return (await COMMANDS[two]())(rest.slice(1));
  if (COMMANDS[command]) return (await COMMANDS[command]())(rest);
  usage(`unknown command "${argv.slice(0, 2).join(' ')}"\n\n${USAGE}`);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    const usageLike =
      err instanceof ConfigError ||
      (isTokenwatchError(err) && USAGE_CODES.has(err.code)) ||
      String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    console.error(`tokenwatch: ${message}`);
    process.exitCode = usageLike ? 2 : 1;
  },
);
