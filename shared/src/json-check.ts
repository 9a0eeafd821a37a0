/**
 * Tiny path-aware checkers for JSON that arrives from outside (files, socket.io). Each throws a
 * SchemaError whose message names the offending path, e.g. `avatar.json: model.inputs[0].shape: expected array`.
 */
export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function fail(path: string, msg: string): never {
  throw new SchemaError(`${path}: ${msg}`);
}

export function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'expected an object');
  return v as Record<string, unknown>;
}

export function str(v: unknown, path: string, opts: { nonEmpty?: boolean; max?: number } = {}): string {
  if (typeof v !== 'string') fail(path, 'expected a string');
  if (opts.nonEmpty && v.length === 0) fail(path, 'must not be empty');
  if (opts.max !== undefined && v.length > opts.max) fail(path, `longer than ${opts.max} characters`);
  return v;
}

export function num(v: unknown, path: string, opts: { min?: number; max?: number; int?: boolean } = {}): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, 'expected a finite number');
  if (opts.int && !Number.isInteger(v)) fail(path, 'expected an integer');
  if (opts.min !== undefined && v < opts.min) fail(path, `must be >= ${opts.min}`);
  if (opts.max !== undefined && v > opts.max) fail(path, `must be <= ${opts.max}`);
  return v;
}

export function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail(path, 'expected true or false');
  return v;
}

export function oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    fail(path, `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
  }
  return v as T;
}

export function arr(v: unknown, path: string, opts: { len?: number; min?: number } = {}): unknown[] {
  if (!Array.isArray(v)) fail(path, 'expected an array');
  if (opts.len !== undefined && v.length !== opts.len) fail(path, `expected ${opts.len} items, got ${v.length}`);
  if (opts.min !== undefined && v.length < opts.min) fail(path, `expected at least ${opts.min} items`);
  return v;
}

export function numArray(v: unknown, path: string, len?: number): number[] {
  return arr(v, path, len === undefined ? {} : { len }).map((x, i) => num(x, `${path}[${i}]`));
}

export function optional<T>(v: unknown, f: (v: unknown) => T): T | undefined {
  return v === undefined ? undefined : f(v);
}
