/**
 * The one command-line parser of every `dnp` command: `node:util` parseArgs (its tokens) plus the strict rules
 * and typed value checks the commands share. `--x v` and `--x=v` both work; an unknown option, a missing value
 * (a value read from the next argument may not start with --), a value given to a flag and a stray argument
 * are errors; `-h`/`--help` is always known. Every error is a UsageError whose message names the option and
 * the problem, e.g. "--port: 99999 is outside 0..65535".
 */
import { existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

/** A bad command line (the commands exit with status 2 on it). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function usageError(message: string): never {
  throw new UsageError(message);
}

/** An option: a flag (boolean) or one that takes a value (string); `env` is the variable read when it is absent. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  env?: string;
}

/** `{ name: { type: 'string' }, … }`: options that take a value. */
export function valueOptions<N extends string>(...names: N[]): Record<N, OptionSpec> {
  return Object.fromEntries(names.map((n) => [n, { type: 'string' }])) as Record<N, OptionSpec>;
}

/** `{ name: { type: 'string', env: VARIABLE }, … }`: options that take a value, each read from its variable when absent. */
export function envOptions<N extends string>(variables: Record<N, string>): Record<N, OptionSpec> {
  return Object.fromEntries(Object.entries<string>(variables).map(([n, env]) => [n, { type: 'string', env }])) as Record<N, OptionSpec>;
}

/** `{ name: { type: 'boolean' }, … }`: flags. */
export function flagOptions<N extends string>(...names: N[]): Record<N, OptionSpec> {
  return Object.fromEntries(names.map((n) => [n, { type: 'boolean' }])) as Record<N, OptionSpec>;
}

export interface ParseOptions {
  /** Environment for the `env` fallbacks (an empty variable counts as unset). */
  env?: NodeJS.ProcessEnv;
  /** Most positional arguments taken (default 0); more are "unexpected argument". */
  maxPositionals?: number;
  /** A repeated option: its values joined with commas (default: the last one counts). */
  joinRepeated?: boolean;
}

/** Parses argv against `specs`; read the values with the typed getters of the result. */
export function parseCommandLine<S extends Record<string, OptionSpec>>(argv: readonly string[], specs: S, opts: ParseOptions = {}): CommandLine<S> {
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, { type: s.type }])),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values = new Map<string, string>();
  const positionals: string[] = [];
  let help = false;
  for (const t of tokens) {
    if (t.kind === 'positional') {
      if (positionals.length >= (opts.maxPositionals ?? 0)) usageError(`unexpected argument '${t.value}' (see --help)`);
      positionals.push(t.value);
      continue;
    }
    if (t.kind !== 'option') continue; // '--': what follows is positional
    if (t.name === 'help' || t.name === 'h') {
      help = true;
      continue;
    }
    const spec = Object.hasOwn(specs, t.name) ? specs[t.name] : undefined;
    if (spec === undefined) usageError(`unknown option ${t.rawName} (see --help)`);
    if (spec.type === 'boolean') {
      if (t.inlineValue === true) usageError(`${t.rawName} takes no value`);
      values.set(t.name, 'true');
      continue;
    }
    if (t.value === undefined || (t.inlineValue === false && t.value.startsWith('--'))) usageError(`--${t.name} needs a value`);
    const prev = values.get(t.name);
    values.set(t.name, opts.joinRepeated && prev !== undefined ? `${prev},${t.value}` : t.value);
  }
  return new CommandLine(specs, values, positionals, help, opts.env ?? {});
}

type Name<S> = keyof S & string;

/** A parsed command line: the typed getters check a value (from the flag, else its env variable) or give the default. */
export class CommandLine<S extends Record<string, OptionSpec>> {
  constructor(
    private readonly specs: S,
    private readonly values: ReadonlyMap<string, string>,
    readonly positionals: readonly string[],
    readonly help: boolean,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Whether the option was on the command line (not from the environment). */
  given(name: Name<S>): boolean {
    return this.values.has(name);
  }

  flag(name: Name<S>): boolean {
    return this.values.get(name) === 'true';
  }

  /** The option's text: the command line's, else its environment variable's, else undefined. */
  str(name: Name<S>): string | undefined {
    const v = this.values.get(name);
    if (v !== undefined) return v;
    const e = this.specs[name]?.env;
    const ev = e === undefined ? undefined : this.env[e];
    return ev === '' ? undefined : ev;
  }

  int(name: Name<S>, min: number, max: number): number | undefined;
  int(name: Name<S>, min: number, max: number, dflt: number): number;
  int(name: Name<S>, min: number, max: number, dflt?: number): number | undefined {
    const v = this.str(name);
    return v === undefined ? dflt : int(name, v, min, max);
  }

  num(name: Name<S>, min: number, max: number): number | undefined;
  num(name: Name<S>, min: number, max: number, dflt: number): number;
  num(name: Name<S>, min: number, max: number, dflt?: number): number | undefined {
    const v = this.str(name);
    return v === undefined ? dflt : num(name, v, min, max);
  }

  /** Comma-separated whole numbers (see intList), or undefined when not given. */
  ints(name: Name<S>, min: number, max: number): number[] | undefined {
    const v = this.str(name);
    return v === undefined ? undefined : intList(name, v, min, max);
  }

  oneOf<T extends string>(name: Name<S>, allowed: readonly T[], dflt: T): T {
    const v = this.str(name);
    return v === undefined ? dflt : oneOf(name, v, allowed);
  }
}

/** A whole number in min..max. */
export function int(name: string, v: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(v.trim())) usageError(`--${name}: '${v}' is not a whole number`);
  return inRange(name, Number(v), min, max);
}

/** A decimal number (e.g. 2, 0.5, .5, 3e-4) in min..max. */
export function num(name: string, v: string, min: number, max: number): number {
  if (!/^-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?$/i.test(v.trim())) usageError(`--${name}: '${v}' is not a number`);
  return inRange(name, Number(v), min, max);
}

/** min..max; max may be Infinity (no upper bound). */
function inRange(name: string, n: number, min: number, max: number): number {
  if (n < min || n > max) usageError(max === Infinity ? `--${name}: ${n} is below ${min}` : `--${name}: ${n} is outside ${min}..${max}`);
  return n;
}

export function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) usageError(`--${name}: '${v}' is not one of ${allowed.join(', ')}`);
  return v as T;
}

/** A whole number from a fixed set (e.g. frame sizes). */
export function intOneOf<T extends number>(name: string, v: string, allowed: readonly T[]): T {
  const n = int(name, v, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (!(allowed as readonly number[]).includes(n)) usageError(`--${name}: ${n} is not one of ${allowed.join(', ')}`);
  return n as T;
}

/** "a, b,,c" → ['a', 'b', 'c']. */
export function commaList(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Comma-separated whole numbers in min..max, none repeated, at least one. */
export function intList(name: string, v: string, min: number, max: number): number[] {
  const l = v.split(',').map((s) => int(name, s.trim(), min, max));
  if (new Set(l).size !== l.length) usageError(`--${name}: ${v} repeats a value`);
  return l;
}

/** A path that names an existing file. */
export function existingFile(name: string, v: string): string {
  if (!existsSync(v) || !statSync(v).isFile()) usageError(`--${name} ${v}: no such file`);
  return v;
}

/** A path that names an existing folder. */
export function existingDir(name: string, v: string): string {
  if (!existsSync(v) || !statSync(v).isDirectory()) usageError(`--${name} ${v} is not a folder`);
  return v;
}

/** An avatar folder: an existing folder that holds avatar.json (the model is checked where it is loaded). */
export function avatarDirArg(name: string, v: string): string {
  existingDir(name, v);
  if (!existsSync(join(v, 'avatar.json'))) usageError(`--${name}: ${v} holds no avatar.json (an avatar folder holds avatar.json and its model)`);
  return v;
}

/** An IP address or "localhost" (a listening or link address). */
export function hostAddress(name: string, v: string): string {
  if (v !== 'localhost' && isIP(v) === 0) usageError(`--${name}: '${v}' is not an IP address (or "localhost")`);
  return v;
}
