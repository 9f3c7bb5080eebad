import type { Redis } from 'ioredis';

/**
 * Flags tokenwatch needs in `notify-keyspace-events`: E keyevent channel, g generic (del,
 * expire, persist, rename), x expired, e evicted, $ strings, h hashes.
 */
export const REQUIRED_FLAGS = 'Eg$xeh';

/** `A` is an alias for `g$lshztdxe` (not n, m). */
function expand(flags: string): Set<string> {
  const out = new Set<string>();
  for (const c of flags) {
    if (c === 'A') for (const a of 'g$lshztdxe') out.add(a);
    else out.add(c);
  }
  return out;
}

export function missingFlags(current: string, required = REQUIRED_FLAGS): string {
  const have = expand(current);
  return [...required].filter((c) => !have.has(c)).join('');
}

/** The user's flags plus what is missing: never drops a flag the user set. */
export function mergeFlags(current: string, required = REQUIRED_FLAGS): string {
  return current + missingFlags(current, required);
}

export interface NotificationStatus {
  enabled: boolean;
  flags: string;
  /** Flags that were added by CONFIG SET in this check. */
  added: string;
  /** Why notifications are not (fully) enabled. */
  problem?: string;
}

/**
 * Reads `notify-keyspace-events` back and, when allowed, merges in the missing flags. Managed
 * Redis often forbids CONFIG SET; that is reported, never hidden.
 */
export async function ensureNotifications(
  client: Redis,
  configure: boolean,
  required = REQUIRED_FLAGS,
): Promise<NotificationStatus> {
  const read = async (): Promise<string> => {
    const reply = (await client.call('CONFIG', 'GET', 'notify-keyspace-events')) as string[];
    return reply[1] ?? '';
  };
  let flags: string;
  try {
    flags = await read();
  } catch (err) {
    return { enabled: false, flags: '', added: '', problem: `CONFIG GET refused: ${message(err)}` };
  }
  const missing = missingFlags(flags, required);
  if (missing === '') return { enabled: true, flags, added: '' };
  if (!configure) {
    return {
      enabled: false,
      flags,
      added: '',
      problem: `notify-keyspace-events is "${flags}", missing "${missing}" (redis.configureNotifications is false)`,
    };
  }
  try {
    await client.call('CONFIG', 'SET', 'notify-keyspace-events', mergeFlags(flags, required));
    const after = await read();
    const still = missingFlags(after, required);
    if (still === '') return { enabled: true, flags: after, added: missing };
    return {
      enabled: false,
      flags: after,
      added: '',
      problem: `flags still missing after CONFIG SET: "${still}"`,
    };
  } catch (err) {
    return {
      enabled: false,
      flags,
      added: '',
      problem: `CONFIG SET notify-keyspace-events refused (${message(err)}); set it to include "${required}" on the server`,
    };
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
