import { TokenwatchError } from '../errors.js';

/**
 * Checked readers for restoring correlator state from a `correlator.snapshot` record. The record
 * is covered by the ledger's hash chain and signed checkpoints, but restore still trusts neither
 * its shape nor its sizes: every field is type-checked and every list is capped by the limit of
 * the structure it refills, so a damaged or hostile snapshot fails with ERR_SNAPSHOT_INVALID
 * instead of corrupting state or memory.
 */
export function invalid(path: string, message: string): never {
  throw new TokenwatchError('ERR_SNAPSHOT_INVALID', `correlator snapshot ${path}: ${message}`, {
    details: { path },
  });
}

export function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(path, 'must be an object');
  return v as Record<string, unknown>;
}

export function arr(v: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(v)) invalid(path, 'must be an array');
  if (v.length > max) invalid(path, `has ${v.length} entries, more than the limit ${max}`);
  return v;
}

export function num(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) invalid(path, 'must be a finite number');
  return v;
}

export function int(v: unknown, path: string, min = 0): number {
  const n = num(v, path);
  if (!Number.isInteger(n) || n < min) invalid(path, `must be an integer >= ${min}`);
  return n;
}

export function optNum(v: unknown, path: string): number | undefined {
  return v === undefined || v === null ? undefined : num(v, path);
}

export function str(v: unknown, path: string, max = 4096): string {
  if (typeof v !== 'string') invalid(path, 'must be a string');
  if (v.length > max) invalid(path, `is longer than ${max} characters`);
  return v;
}

export function optStr(v: unknown, path: string): string | undefined {
  return v === undefined || v === null ? undefined : str(v, path);
}

export function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') invalid(path, 'must be a boolean');
  return v;
}

export function oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
    invalid(path, `must be one of ${allowed.join(', ')}`);
  return v as T;
}
