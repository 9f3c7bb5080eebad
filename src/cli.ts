#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, TokenwatchError, isTokenwatchError } from './errors.js';
import { listRecords, openReadOnly } from './audit/query.js';
import { VERSION } from './version.js';

const USAGE = `tokenwatch ${VERSION}: observability and SOC 2 auditing for OAuth tokens in Redis

Usage:
  tokenwatch serve [--config FILE]            run the service (default config: config/tokenwatch.yaml)
  tokenwatch audit list --db PATH [--type T] [--since ISO] [--limit N] [--json]
                                              print audit records, one JSON object per line
  tokenwatch --version | --help
`;

function usage(message: string): never {
  throw new TokenwatchError('ERR_USAGE', message);
}

function parseIso(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) usage(`${flag} must be an ISO 8601 time, got "${value}"`);
  return t;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case 'serve': {
      const { values } = parseArgs({
        args: rest,
        options: { config: { type: 'string' } },
        strict: true,
      });
      const { serve } = await import('./main.js');
      await serve(values.config);
      return -1; // keeps running; signals end it
    }
    case 'audit': {
      const [sub, ...args] = rest;
      if (sub !== 'list') usage(`unknown audit subcommand "${sub ?? ''}" (try: audit list)`);
      const { values } = parseArgs({
        args,
        options: {
          db: { type: 'string' },
          type: { type: 'string' },
          since: { type: 'string' },
          limit: { type: 'string' },
          json: { type: 'boolean', default: true },
        },
        strict: true,
      });
      if (!values.db) usage('audit list needs --db PATH');
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 0))
        usage('--limit must be a whole number');
      const db = openReadOnly(values.db);
      try {
        const rows = listRecords(db, {
          type: values.type,
          since: parseIso(values.since, '--since'),
          limit,
        });
        for (const r of rows) {
          process.stdout.write(
            `${JSON.stringify({
              seq: r.seq,
              time: new Date(r.time).toISOString(),
              source: r.source,
              type: r.type,
              kind: r.kind,
              fingerprint: r.fingerprint,
              attributes: r.attrs,
            })}\n`,
          );
        }
      } finally {
        db.close();
      }
      return 0;
    }
    default:
      usage(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      console.error(`tokenwatch: ${err.message}`);
      process.exitCode = 2;
    } else if (
      (isTokenwatchError(err) && (err.code === 'ERR_USAGE' || err.code.startsWith('ERR_CONFIG'))) ||
      String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')
    ) {
      console.error(`tokenwatch: ${(err as Error).message}`);
      process.exitCode = 2;
    } else {
      console.error(`tokenwatch: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    }
  },
);
