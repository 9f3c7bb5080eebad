import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, TokenwatchError, type ConfigIssue } from '../errors.js';
import { configSchema, type Config } from './schema.js';
import { applyProviderEnv } from './providers-env.js';
import { applyAdminEnv } from './admin-schema.js';
import { applyRenames } from './deprecated-keys.js';

/** The documented default config shipped with the package. */
export const DEFAULT_CONFIG_PATH = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../config/tokenwatch.yaml',
);

export interface LoadOptions {
  /** Explicit `--config` path; otherwise TOKENWATCH_CONFIG, otherwise the shipped default. */
  file?: string;
  env?: NodeJS.ProcessEnv;
}

export interface LoadedConfig {
  config: Readonly<Config>;
  /** Path of the YAML document that was read. */
  source: string;
  /** Deprecated keys that were read under their new names: log them. */
  warnings: readonly string[];
}

/**
 * Reads the YAML document, applies environment overrides, validates it and freezes it. Any
 * problem throws a ConfigError listing every bad key path: an audit daemon refuses to start
 * rather than run on silent defaults.
 */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const source = options.file ?? env.TOKENWATCH_CONFIG ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    throw new TokenwatchError('ERR_CONFIG_NOT_FOUND', `cannot read config file ${source}`, {
      cause: err,
    });
  }
  const warnings: string[] = [];
  return { config: parseConfig(text, env, source, warnings), source, warnings };
}

/**
 * Validates a YAML document (with env overrides) into a frozen Config. Deprecated key names are
 * accepted under their new names, with a line added to `warnings`.
 */
export function parseConfig(
  text: string,
  env: NodeJS.ProcessEnv = {},
  source = '<config>',
  warnings: string[] = [],
): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        path: `${source}:${e.linePos?.[0].line ?? '?'}`,
        message: e.message,
      })),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError([{ path: '', message: 'the config must be a YAML mapping' }]);
  }
  const issues: ConfigIssue[] = [];
  const fromEnv = new Map<string, string>();
  const merged = applyEnv(raw as Record<string, unknown>, env, issues, fromEnv);
  warnings.push(...applyRenames(merged, issues));
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    for (const zi of result.error.issues) {
      const issue = toIssue(zi);
      const envName = fromEnv.get(issue.path) ?? fromEnv.get(issue.path.replace(/\[\d+\]$/, ''));
      issues.push(envName ? { ...issue, path: `${issue.path} (from ${envName})` } : issue);
    }
  }
  if (issues.length > 0 || !result.success) throw new ConfigError(issues);
  warnings.push(...advisories(result.data));
  return deepFreeze(result.data);
}

/** Settings that are valid but cannot do what they say together. */
function advisories(c: Config): string[] {
  const out: string[] = [];
  const { heapGrowthLiftAbove: lift, heapGrowthPercent } = c.runtime;
  const max = c.redis.maxPendingNotifications;
  if (lift !== null && heapGrowthPercent !== null && lift > max) {
    out.push(
      `runtime.heapGrowthLiftAbove (${lift}) is above redis.maxPendingNotifications (${max}): one node's backlog is dropped (and reconciled) before it lifts the heap growth bound`,
    );
  }
  return out;
}

function toIssue(issue: z.core.$ZodIssue): ConfigIssue {
  const path = issue.path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
  return { path, message: issue.message };
}

interface EnvOverride {
  env: string;
  path: readonly string[];
  parse: (v: string) => unknown;
}

const asInt = (v: string): unknown => (/^\d+$/.test(v) ? Number(v) : v);
const asString = (v: string): unknown => v;
const asBool = (v: string): unknown => (v === 'true' ? true : v === 'false' ? false : v);
const asNumber = (v: string): unknown => (/^\d+(\.\d+)?$/.test(v) ? Number(v) : v);

const ENV_OVERRIDES: readonly EnvOverride[] = [
  { env: 'TOKENWATCH_REDIS_URL', path: ['redis', 'url'], parse: asString },
  { env: 'TOKENWATCH_PORT', path: ['server', 'port'], parse: asInt },
  { env: 'TOKENWATCH_HOST', path: ['server', 'host'], parse: asString },
  { env: 'TOKENWATCH_AUDIT_PATH', path: ['audit', 'path'], parse: asString },
  { env: 'TOKENWATCH_SIGNING_KEY', path: ['audit', 'signingKey'], parse: asString },
  { env: 'TOKENWATCH_CHECKPOINT_LOG', path: ['audit', 'checkpointLog'], parse: asString },
  { env: 'TOKENWATCH_ARCHIVE_AFTER_DAYS', path: ['audit', 'archive', 'afterDays'], parse: asInt },
  { env: 'TOKENWATCH_ARCHIVE_DIR', path: ['audit', 'archive', 'dir'], parse: asString },
  { env: 'TOKENWATCH_LOG_LEVEL', path: ['log', 'level'], parse: asString },
  {
    env: 'TOKENWATCH_REVOCATION_SLA_SECONDS',
    path: ['correlate', 'revocationSlaSeconds'],
    parse: asNumber,
  },
  { env: 'TOKENWATCH_ALERTMANAGER_URL', path: ['alerts', 'alertmanagerUrl'], parse: asString },
  { env: 'TOKENWATCH_ALERT_WEBHOOK_URL', path: ['alerts', 'webhookUrl'], parse: asString },
  { env: 'TOKENWATCH_KEY_MISSES', path: ['metrics', 'keyMisses'], parse: asBool },
];

function applyEnv(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  issues: ConfigIssue[],
  fromEnv: Map<string, string>,
): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const o of ENV_OVERRIDES) {
    const v = env[o.env];
    if (v === undefined || v === '') continue;
    setPath(out, o.path, o.parse(v), issues);
    fromEnv.set(o.path.join('.'), o.env);
  }
  const clusterNodes = env.TOKENWATCH_REDIS_CLUSTER_NODES;
  if (clusterNodes) {
    const redis = ensureSection(out, 'redis', issues);
    const cluster = (redis.cluster ?? {}) as Record<string, unknown>;
    redis.cluster = { ...cluster, nodes: splitList(clusterNodes) };
    fromEnv.set('redis.cluster.nodes', 'TOKENWATCH_REDIS_CLUSTER_NODES');
  }
  const sentinels = env.TOKENWATCH_REDIS_SENTINELS;
  const sentinelName = env.TOKENWATCH_REDIS_SENTINEL_NAME;
  if (sentinels || sentinelName) {
    const redis = ensureSection(out, 'redis', issues);
    const sentinel = (redis.sentinel ?? {}) as Record<string, unknown>;
    redis.sentinel = {
      ...sentinel,
      ...(sentinels ? { sentinels: splitList(sentinels) } : {}),
      ...(sentinelName ? { name: sentinelName } : {}),
    };
    fromEnv.set('redis.sentinel.sentinels', 'TOKENWATCH_REDIS_SENTINELS');
    fromEnv.set('redis.sentinel.name', 'TOKENWATCH_REDIS_SENTINEL_NAME');
  }
  applyProviderEnv(out, env, issues, fromEnv);
  applyAdminEnv(out, env, issues, fromEnv);
  const hmac = env.TOKENWATCH_HMAC_KEY;
  if (hmac !== undefined && hmac !== '') {
    if (hmac.length < 16) {
      issues.push({
        path: 'audit.hmacKeys (TOKENWATCH_HMAC_KEY)',
        message: 'must be at least 16 characters',
      });
    } else {
      // The env key becomes the writing key; configured keys stay resolvable for old records.
      const id = `env-${createHash('sha256').update('tokenwatch-key-id\0').update(hmac).digest('hex').slice(0, 8)}`;
      const audit = ensureSection(out, 'audit', issues);
      const keys = Array.isArray(audit.hmacKeys) ? (audit.hmacKeys as unknown[]) : [];
      audit.hmacKeys = [{ id, key: hmac }, ...keys];
    }
  }
  return out;
}

function splitList(v: string): string[] {
  return v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

function ensureSection(
  root: Record<string, unknown>,
  name: string,
  issues: ConfigIssue[],
): Record<string, unknown> {
  const cur = root[name];
  if (cur === undefined || cur === null) {
    const fresh: Record<string, unknown> = {};
    root[name] = fresh;
    return fresh;
  }
  if (typeof cur !== 'object' || Array.isArray(cur)) {
    issues.push({ path: name, message: 'must be a mapping' });
    return {};
  }
  return cur as Record<string, unknown>;
}

function setPath(
  root: Record<string, unknown>,
  path: readonly string[],
  value: unknown,
  issues: ConfigIssue[],
): void {
  let target = root;
  for (const section of path.slice(0, -1)) target = ensureSection(target, section, issues);
  target[path.at(-1) as string] = value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
