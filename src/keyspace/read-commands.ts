/**
 * Read commands whose lookups count for the token hit ratio, and where their keys are. Each is a
 * command that, on a missing key, makes Redis publish `keymiss` (lookupKeyRead without
 * LOOKUP_NONOTIFY, Redis >= 6.0), so sampled reads and exact misses count the same lookups.
 * Writes (SET, HSET, DEL, EXPIRE ...) look keys up for writing and never publish `keymiss`.
 * Other reads that do publish it are left out on purpose: PEXPIRETIME is tokenwatch's own expiry
 * look-up (MONITOR shows it inside the script, once per token write), and others (DUMP, SSCAN,
 * HSCAN, SINTER, bit, list, sorted-set and stream reads) are not how tokens are read; their misses of a token key in a
 * window count as misses without a read (test/keyspace/read-commands.redis.test.ts holds the list
 * against a real Redis).
 *
 * `first` is the index of the first key in the argument list (0 = command name); `step`: every
 * step-th argument after it is a key; `all`: every argument from `first` on is a key.
 */
interface KeySpec {
  first: number;
  all?: boolean;
}

const ONE_KEY: KeySpec = { first: 1 };
const ALL_KEYS: KeySpec = { first: 1, all: true };

export const READ_COMMANDS: ReadonlyMap<string, KeySpec> = new Map([
  ['get', ONE_KEY],
  ['getex', ONE_KEY],
  ['getdel', ONE_KEY],
  ['getrange', ONE_KEY],
  ['strlen', ONE_KEY],
  ['mget', ALL_KEYS],
  ['exists', ALL_KEYS],
  ['hget', ONE_KEY],
  ['hmget', ONE_KEY],
  ['hgetall', ONE_KEY],
  ['hexists', ONE_KEY],
  ['hkeys', ONE_KEY],
  ['hvals', ONE_KEY],
  ['hlen', ONE_KEY],
  ['ttl', ONE_KEY],
  ['pttl', ONE_KEY],
  ['expiretime', ONE_KEY],
  ['type', ONE_KEY],
  ['smembers', ONE_KEY],
  ['sismember', ONE_KEY],
  ['hstrlen', ONE_KEY],
  ['hrandfield', ONE_KEY],
  ['scard', ONE_KEY],
  ['smismember', ONE_KEY],
  ['srandmember', ONE_KEY],
  ['substr', ONE_KEY],
  ['touch', ALL_KEYS],
]);

/**
 * The keys a command line reads (latin1 strings), or none when it is not a counted read.
 * `args[0]` is the command name. Nothing is kept: the caller classifies and drops them.
 */
export function readKeys(args: readonly string[]): readonly string[] {
  const name = args[0];
  if (name === undefined || name.length > 16) return [];
  const spec = READ_COMMANDS.get(name.toLowerCase());
  if (!spec) return [];
  if (spec.all) return args.slice(spec.first);
  const k = args[spec.first];
  return k === undefined ? [] : [k];
}

const ESCAPES: Record<string, string> = {
  '\\': '\\',
  '"': '"',
  n: '\n',
  r: '\r',
  t: '\t',
  a: '\x07',
  b: '\b',
};

/**
 * Undoes Redis' sdscatrepr quoting of one MONITOR argument (after ioredis has already turned
 * `\"` into `"`): `\\ \n \r \t \a \b \xHH` -> the raw byte, as a latin1 string like the keys
 * keyspace notifications deliver.
 */
export function unescapeMonitorArg(s: string): string {
  if (!s.includes('\\')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const n = s[i + 1] as string;
    if (n === 'x' && i + 3 < s.length && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      out += String.fromCharCode(parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else if (ESCAPES[n] !== undefined) {
      out += ESCAPES[n];
      i += 1;
    } else {
      out += c;
    }
  }
  return out;
}
