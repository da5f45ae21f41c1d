/**
 * A small reader for one TOML table: typed getters that record which keys the
 * schema knows, and `done()` that rejects the rest with a suggestion. Errors
 * name the file, the line, the service and the field.
 */

import { OrcaError } from "../errors.ts";
import { type KeyPath, locateKey } from "./locate.ts";
import { closest, didYouMean } from "./suggest.ts";

/** Where a table came from, for error messages. */
export interface Source {
  /** The file name shown to the user. */
  file: string;
  /** The TOML text, for line numbers; absent for API input. */
  text?: string;
  /** e.g. `service "api"`; prefixes every message. */
  subject?: string;
  /** How many leading path parts the subject stands for (not shown in field names). */
  subjectDepth?: number;
}

type Table = Record<string, unknown>;

/**
 * A config error at `path` (absolute): "<subject>: `<field>` <message>" at
 * file:line. The field is written as in TOML (`wasm.files."/data"`,
 * `triggers[2]`); a path the subject stands for whole is named in full, so no
 * message names an empty field.
 */
export function fieldError(source: Source, path: KeyPath, message: string, hint?: string, cause?: unknown): OrcaError {
  const { file, text, subject } = source;
  const line = text === undefined ? undefined : locateKey(text, path);
  const relative = path.slice(source.subjectDepth ?? 0);
  const field = relative.length > 0 ? fieldName(relative) : path.length > 0 ? fieldName(path) : undefined;
  const what = subject ? `${subject}: ` : "";
  return new OrcaError("config", `${what}${field === undefined ? "the document" : `\`${field}\``} ${message}`, {
    where: line ? `${file}:${line}` : file,
    hint,
    cause,
  });
}

/** A key path as TOML writes it: bare keys dotted, other keys quoted, list items as `[i]`. */
export function fieldName(path: KeyPath): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += (out ? "." : "") + (/^[A-Za-z0-9_-]+$/.test(part) ? part : quote(part));
  }
  return out;
}

/** A value for a message: JSON-quoted (control characters escaped) and cut to `max` characters. */
export function quote(value: string, max = 80): string {
  return value.length > max
    ? `${JSON.stringify(value.slice(0, max))}... (${value.length} characters)`
    : JSON.stringify(value);
}

export class TableReader {
  readonly #table: Table;
  readonly #source: Source;
  readonly #path: KeyPath;
  readonly #known = new Set<string>();

  constructor(table: unknown, source: Source, path: KeyPath) {
    this.#source = source;
    this.#path = path;
    if (!isTable(table)) throw this.error(path, `must be a table, got ${describe(table)}`);
    this.#table = table;
  }

  /** An error located at `path` (absolute), with the subject prefixed. */
  error(path: KeyPath, message: string, hint?: string): OrcaError {
    return fieldError(this.#source, path, message, hint);
  }

  has(key: string): boolean {
    this.#known.add(key);
    return this.#table[key] !== undefined;
  }

  raw(key: string): unknown {
    this.#known.add(key);
    return this.#table[key];
  }

  string(key: string, opts: { required?: boolean; pattern?: RegExp; patternHint?: string } = {}): string | undefined {
    const v = this.raw(key);
    if (v === undefined) {
      if (opts.required) {
        const typo = closest(key, Object.keys(this.#table).filter((k) => !this.#known.has(k)));
        throw typo
          ? this.error([...this.#path, typo], `is not a known key (did you mean \`${key}\`?)`)
          : this.error([...this.#path, key], "is required");
      }
      return undefined;
    }
    if (typeof v !== "string") throw this.error([...this.#path, key], `must be a string, got ${describe(v)}`);
    if (opts.pattern && !opts.pattern.test(v)) {
      throw this.error([...this.#path, key], `has an invalid value ${JSON.stringify(v)}`, opts.patternHint);
    }
    return v;
  }

  number(key: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n)) {
      throw this.error([...this.#path, key], `must be a number, got ${describe(v)}`);
    }
    if (opts.integer && !Number.isInteger(n)) {
      throw this.error([...this.#path, key], `must be a whole number, got ${n}`);
    }
    if (opts.min !== undefined && n < opts.min) {
      throw this.error([...this.#path, key], `must be at least ${opts.min}, got ${n}`);
    }
    if (opts.max !== undefined && n > opts.max) {
      throw this.error([...this.#path, key], `must be at most ${opts.max}, got ${n}`);
    }
    return n;
  }

  boolean(key: string): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") throw this.error([...this.#path, key], `must be true or false, got ${describe(v)}`);
    return v;
  }

  strings(key: string): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
      throw this.error([...this.#path, key], `must be a list of strings, got ${describe(v)}`);
    }
    return v as string[];
  }

  /** A table of string values (`env`, `labels`). */
  stringMap(key: string): Record<string, string> | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!isTable(v)) throw this.error([...this.#path, key], `must be a table of strings, got ${describe(v)}`);
    for (const [k, s] of Object.entries(v)) {
      if (typeof s !== "string") throw this.error([...this.#path, key, k], `must be a string, got ${describe(s)}`);
    }
    return { ...(v as Record<string, string>) };
  }

  /** A reader for a sub-table, or `undefined` when the key is absent. */
  table(key: string): TableReader | undefined {
    const v = this.raw(key);
    return v === undefined ? undefined : new TableReader(v, this.#source, [...this.#path, key]);
  }

  /** Readers for an array of tables (`[[node.gpus]]`). */
  tables(key: string): TableReader[] {
    const v = this.raw(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw this.error([...this.#path, key], `must be a list of tables ([[${key}]])`);
    return v.map((t, i) => new TableReader(t, this.#source, [...this.#path, key, i]));
  }

  path(key: string): KeyPath {
    return [...this.#path, key];
  }

  /** Rejects keys the schema did not ask for. Call after every getter. */
  done(): void {
    for (const key of Object.keys(this.#table)) {
      if (!this.#known.has(key)) {
        throw this.error([...this.#path, key], `is not a known key${didYouMean(key, this.#known)}`);
      }
    }
  }
}

function isTable(v: unknown): v is Table {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (v instanceof Date) return "a date";
  if (isTable(v)) return "a table";
  if (typeof v === "string") return `string ${quote(v)}`;
  if (typeof v === "bigint") return `number ${v}`;
  if (typeof v === "number" || typeof v === "boolean") return `${typeof v} ${v}`;
  return typeof v;
}
