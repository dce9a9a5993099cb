import { formatHostPort, type HostPortRules, tryParseHostPort } from "./address.ts";
import type { ConfigProblem } from "./errors.ts";
import type { Schema } from "./walk.ts";

/** Returned by a field check that found a problem (the problem itself went to the context). */
export const INVALID: unique symbol = Symbol("ntpshield.config.invalid");
export type Invalid = typeof INVALID;

/** Marks schema leaves, so that a schema table can hold both fields and nested sections. */
export const FIELD: unique symbol = Symbol("ntpshield.config.field");

/** Where a field check reports problems, and how it names the items of a list. */
export interface CheckContext {
  readonly problems: ConfigProblem[];
  /** The key of item `index` of the list at `key`: "server.listen[1]" in a file, "--listen" for a flag. */
  item(key: string, index: number): string;
}

/** What kind of value a field holds; the JSON Schema and the docs tables are written from it. */
export type FieldType =
  | "integer"
  | "number"
  | "boolean"
  | "string"
  | "duration" // seconds: a number, or a string matching DURATION_PATTERN
  | "size" // bytes: an integer, or a string matching SIZE_PATTERN
  | "list" // of strings, each as `items` says
  | "tables"; // [[section.key]]: tables, each as `table` says

/** What each item of a list of strings must be. */
export interface ItemData {
  /** As a phrase after "must be" ("a flag name"). */
  readonly expect: string;
  /** A regular expression (source) every item matches, when one can say it. */
  readonly pattern?: string | undefined;
}

/**
 * One configuration value: its type, limits, default, and the check that turns raw TOML into the typed value.
 * The limits are data (min, max, enum, pattern), so that the JSON Schema and docs/configuration.md are
 * written from the same table the validator reads; a closure inside `check` is left only where no regular
 * expression says it (address parsing). The check reports into the context and returns INVALID, so that
 * all problems are collected.
 */
export interface Field<T> {
  readonly [FIELD]: true;
  readonly type: FieldType;
  /** One line: what the key does, and its unit. The source of the docs tables and the JSON Schema. */
  readonly description: string;
  /** What a valid value is, as a phrase after "must be" (also used by the docs test). */
  readonly expect: string;
  readonly default: T;
  /** True when a change only takes effect on restart (sockets, threads, privileges), not on SIGHUP. */
  readonly restart: boolean;
  /** Numbers, durations (seconds) and sizes (bytes): the least value; lists: the fewest items. */
  readonly min?: number | undefined;
  /** Numbers, durations and sizes: the greatest value; lists: the most items. */
  readonly max?: number | undefined;
  /** A number's unit, as messages and docs write it ("seconds"). */
  readonly unit?: string | undefined;
  /** The only strings allowed. */
  readonly enum?: readonly string[] | undefined;
  /** A regular expression (source, no flags, no lookaround) a string matches in full. */
  readonly pattern?: string | undefined;
  /** Lists of strings: what each item must be. */
  readonly items?: ItemData | undefined;
  /** Lists: an item may appear only once. */
  readonly unique?: boolean | undefined;
  /** Lists of tables: each table's keys. */
  readonly table?: Schema | undefined;
  /** Lists of tables: the keys every table must give (checked here, before the tables themselves). */
  readonly required?: readonly string[] | undefined;
  check(value: unknown, key: string, ctx: CheckContext): T | Invalid;
}

export interface FieldOptions {
  restart?: boolean;
  /** One line for the docs and the JSON Schema: what the key does, and its unit. */
  description?: string;
}

/** The data of a field, without the marker and the check. */
export type FieldData<T> = Omit<Field<T>, typeof FIELD | "check" | "restart" | "description"> & FieldOptions;

export function isField(x: unknown): x is Field<unknown> {
  return typeof x === "object" && x !== null && (x as { [FIELD]?: unknown })[FIELD] === true;
}

/** A TOML table as smol-toml returns it (a plain or null-prototype object, not an array or a date). */
export function isTable(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === null || proto === Object.prototype;
}

/**
 * A TOML float whose value is a whole number (`1e3`, `2.0`, `-0.0`). TOML tells integers from floats
 * (TOML 1.0 "Integer", "Float"), but a JavaScript number does not: parseConfig reads integers as BigInt
 * and boxes these floats (tomlNumbers), so that an integer field can refuse them while a number field
 * takes their value. A float with a fraction stays a plain number: no integer field could take it anyway.
 */
export class WholeFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/**
 * Turns a tree from smol-toml's parse with `integersAsBigInt: true` into the values the fields check, in
 * place: an integer becomes a number (kept as a BigInt beyond 2^53, which every range refuses by its exact
 * digits), a whole-valued float a WholeFloat. Tables are smol-toml's null-prototype objects, so assigning
 * any key (even "__proto__") only sets that key.
 */
export function tomlNumbers(v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  if (typeof v === "number") return Number.isInteger(v) ? new WholeFloat(v) : v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = tomlNumbers(v[i]);
  } else if (isTable(v)) {
    for (const k of Object.keys(v)) v[k] = tomlNumbers(v[k]);
  }
  return v;
}

/**
 * The number a number field takes: a whole-valued float's value, and +0 for -0 (TOML's `-0.0`). -0 is
 * accepted where 0 is (it is equal to it, and TOML 1.0 allows it), but not kept: 1/-0 is -Infinity and
 * Object.is(-0, 0) is false, so nothing downstream should ever see it.
 */
function numberOf(v: unknown): unknown {
  const n = v instanceof WholeFloat ? v.value : v;
  return n === 0 ? 0 : n;
}

/** Shows a rejected value the way it was written, short enough for one log line. */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case "string": {
      const s = JSON.stringify(v);
      return s.length > 60 ? `${s.slice(0, 56)}..."` : s;
    }
    case "number":
      if (Number.isNaN(v)) return "nan";
      if (v === Number.POSITIVE_INFINITY) return "inf";
      if (v === Number.NEGATIVE_INFINITY) return "-inf";
      return String(v);
    case "boolean":
      return String(v);
    case "undefined":
      return "nothing";
    case "bigint":
      return String(v);
    default:
      if (v instanceof WholeFloat) {
        const text = Object.is(v.value, -0) ? "-0" : String(v.value);
        return `${/[e.]/.test(text) ? text : `${text}.0`} (a float)`;
      }
      if (Array.isArray(v)) return v.length === 0 ? "an empty array" : "an array";
      if (isTable(v)) return "a table";
      if (v instanceof Date || (typeof v === "object" && v !== null)) return "a date/time";
      return typeof v;
  }
}

function fail(ctx: CheckContext, key: string, expect: string, value: unknown): Invalid {
  ctx.problems.push({ key, reason: `must be ${expect}, got ${describeValue(value)}` });
  return INVALID;
}

/** Builds a frozen field from its data; keys left undefined are left out, so the data reads as written. */
export function makeField<T>(
  data: FieldData<T>,
  check: (value: unknown, key: string, ctx: CheckContext) => T | Invalid,
): Field<T> {
  const defined = Object.entries(data).filter(([, v]) => v !== undefined);
  return Object.freeze({
    [FIELD]: true as const,
    ...(Object.fromEntries(defined) as FieldData<T>),
    restart: data.restart === true,
    description: data.description ?? "",
    check,
  });
}

function inRange(v: unknown, min: number, max: number): v is number {
  // Written so that NaN fails too.
  return typeof v === "number" && v >= min && v <= max;
}

/** A string test from a pattern (matched in full, no flags) and, where no pattern says it all, a closure. */
function stringTest(pattern: string | undefined, test: ((s: string) => boolean) | undefined) {
  const re = pattern === undefined ? undefined : new RegExp(pattern);
  return (v: unknown): v is string =>
    typeof v === "string" && (re === undefined || re.test(v)) && (test === undefined || test(v));
}

/**
 * An integer from min to max inclusive. A TOML float is refused even when whole (`burst = 1e3`): TOML
 * writes counts as integers, so a float is a slip, said rather than guessed at. `+ 0` turns a flag's -0
 * into 0.
 */
export function int(o: FieldOptions & { min: number; max: number; default: number }): Field<number> {
  const expect = `an integer from ${o.min} to ${o.max}`;
  return makeField({ ...o, type: "integer", expect }, (v, key, ctx) =>
    inRange(v, o.min, o.max) && Number.isInteger(v) ? v + 0 : fail(ctx, key, expect, v),
  );
}

/** A finite number from min to max inclusive, optionally with a unit for the message ("seconds"). */
export function num(
  o: FieldOptions & { min: number; max: number; default: number; unit?: string },
): Field<number> {
  const expect = `a number${o.unit ? ` of ${o.unit}` : ""} from ${o.min} to ${o.max}`;
  return makeField({ ...o, type: "number", expect }, (v, key, ctx) => {
    const n = numberOf(v);
    return inRange(n, o.min, o.max) ? n : fail(ctx, key, expect, n);
  });
}

export function bool(o: FieldOptions & { default: boolean }): Field<boolean> {
  const expect = "true or false";
  return makeField({ ...o, type: "boolean", expect }, (v, key, ctx) =>
    typeof v === "boolean" ? v : fail(ctx, key, expect, v),
  );
}

/**
 * A string matching `pattern` (in full; a regular expression without lookaround, so that editors' engines
 * read it too) and passing `test`, the closure kept only for what no such pattern says; `expect` says what
 * is wanted ("a user name").
 */
export function str(
  o: FieldOptions & {
    default: string;
    expect: string;
    pattern?: string;
    test?: (s: string) => boolean;
  },
): Field<string> {
  const ok = stringTest(o.pattern, o.test);
  const { test: _, ...data } = o;
  return makeField({ ...data, type: "string" }, (v, key, ctx) => (ok(v) ? v : fail(ctx, key, o.expect, v)));
}

/** One of a fixed set of strings; the TS type is their union. */
export function oneOf<const E extends readonly string[]>(
  values: E,
  o: FieldOptions & { default: E[number] },
): Field<E[number]> {
  const expect = `one of ${values.map((x) => JSON.stringify(x)).join(", ")}`;
  return makeField({ ...o, type: "string", expect, enum: values }, (v, key, ctx) =>
    typeof v === "string" && values.includes(v) ? (v as E[number]) : fail(ctx, key, expect, v),
  );
}

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/** A duration written as a string: a number and one unit, "90s", "15m", "1.5h", "1d". */
export const DURATION_PATTERN = "^([0-9]{1,9}(?:\\.[0-9]{1,9})?)(s|m|h|d)$";
const DURATION_RE = new RegExp(DURATION_PATTERN);

/** Seconds from a TOML number (seconds) or a string with a unit: "90s", "15m", "1.5h", "1d". */
export function parseDuration(v: unknown): number | undefined {
  const n = numberOf(v);
  if (typeof n === "number") return Number.isFinite(n) ? n : undefined;
  if (typeof v !== "string") return undefined;
  const m = DURATION_RE.exec(v);
  if (m === null) return undefined;
  return Number(m[1]) * UNIT_SECONDS[m[2]!]!;
}

/** A duration in seconds from min to max; see parseDuration for the accepted forms. */
export function duration(o: FieldOptions & { min: number; max: number; default: number }): Field<number> {
  const expect = `a duration from ${o.min} to ${o.max} seconds (a number of seconds, or a string like "15m")`;
  return makeField(
    { ...o, type: "duration", expect, unit: "seconds", pattern: DURATION_PATTERN },
    (v, key, ctx) => {
      const s = parseDuration(v);
      return s !== undefined && inRange(s, o.min, o.max) ? s : fail(ctx, key, expect, numberOf(v));
    },
  );
}

/**
 * Checks that a value is an array with a length in range; reports and returns undefined otherwise. A list
 * of the wrong length says how long it is, so that the operator knows how many items to take out.
 */
export function checkList(
  v: unknown,
  key: string,
  ctx: CheckContext,
  what: string,
  min: number,
  max: number,
): readonly unknown[] | undefined {
  const expect = `a list of ${min === 0 ? "up to" : `${min} to`} ${max} ${what}`;
  if (!Array.isArray(v)) {
    fail(ctx, key, expect, v);
    return undefined;
  }
  const items = (n: number) => `${n} item${n === 1 ? "" : "s"}`;
  const got = v.length === 0 ? "an empty array" : `an array of ${v.length}`;
  if (v.length > max) {
    ctx.problems.push({ key, reason: `must have at most ${items(max)}, got ${got}` });
    return undefined;
  }
  if (v.length < min) {
    ctx.problems.push({ key, reason: `must have at least ${items(min)}, got ${got}` });
    return undefined;
  }
  return v;
}

/**
 * A list of "HOST:PORT" strings, each stored in canonical form (formatHostPort of parseHostPort: the port
 * always written, IPv6 in RFC 5952 text, IPv4-mapped unmapped), so whoever parses it again gets the same
 * address. Duplicates are refused: a second socket on the same address fails to bind, a second copy of
 * an upstream would count twice. The items have no pattern: an address is parsed, not matched.
 */
export function hostPortList(
  o: FieldOptions & HostPortRules & { default: readonly string[]; min?: number; max: number },
): Field<readonly string[]> {
  const min = o.min ?? 0;
  const form = o.names ? "HOST:PORT" : "ADDR:PORT";
  const entry =
    `${o.names ? "a host name or IP address" : "an IP address"} with ` +
    `${o.defaultPort === undefined ? "a port" : `an optional port (default ${o.defaultPort})`}` +
    `, as "${form}" or "[IPv6]:PORT"`;
  const def = o.default.map((s) => {
    const r = tryParseHostPort(s, o);
    if (!r.ok) throw new Error(`schema default ${JSON.stringify(s)} is invalid: ${r.reason}`);
    return formatHostPort(r.value);
  });
  const data = {
    type: "list" as const,
    description: o.description,
    restart: o.restart,
    expect: `a list of "${form}" strings`,
    default: def,
    min,
    max: o.max,
    items: { expect: entry },
    unique: true,
  };
  return makeField(data, (v, key, ctx) => {
    const list = checkList(v, key, ctx, `"${form}" strings`, min, o.max);
    if (list === undefined) return INVALID;
    const out: string[] = [];
    const seen = new Set<string>();
    let bad = false;
    list.forEach((item, i) => {
      const ikey = ctx.item(key, i);
      if (typeof item !== "string") {
        bad = true;
        fail(ctx, ikey, entry, item);
        return;
      }
      const r = tryParseHostPort(item, o);
      if (!r.ok) {
        bad = true;
        ctx.problems.push({ key: ikey, reason: `${r.reason}, got ${describeValue(item)}` });
        return;
      }
      const id = `${r.value.host}|${r.value.port}`;
      if (seen.has(id)) {
        bad = true;
        ctx.problems.push({ key: ikey, reason: `is listed more than once, got ${describeValue(item)}` });
        return;
      }
      seen.add(id);
      out.push(formatHostPort(r.value));
    });
    return bad ? INVALID : out;
  });
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

/** A size written as a string: a number and one unit, "64MiB", "200MB", "512 KiB". */
export const SIZE_PATTERN = "^([0-9]{1,12}(?:\\.[0-9]{1,6})?)\\s?(B|KB|MB|GB|KiB|MiB|GiB)$";
const SIZE_RE = new RegExp(SIZE_PATTERN);

/**
 * Bytes from a TOML integer (bytes) or a string with a unit: "64MiB", "200MB", "512KiB". A float is refused
 * even when whole (`4e6`), as an integer field refuses it: a byte count is an integer.
 */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isInteger(v) ? v + 0 : undefined;
  if (typeof v !== "string") return undefined;
  const m = SIZE_RE.exec(v);
  if (m === null) return undefined;
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!]!);
}

/** A byte count in the largest binary unit that divides it: "64 KiB", "1 GiB", "100 bytes". */
export function formatSize(n: number): string {
  for (const [u, f] of [
    ["GiB", 1024 ** 3],
    ["MiB", 1024 ** 2],
    ["KiB", 1024],
  ] as const) {
    if (n >= f && n % f === 0) return `${n / f} ${u}`;
  }
  return `${n} bytes`;
}

/** A size in bytes from min to max; see parseSize for the accepted forms. */
export function size(o: FieldOptions & { min: number; max: number; default: number }): Field<number> {
  const expect =
    `a size from ${formatSize(o.min)} to ${formatSize(o.max)} ` +
    `(a number of bytes, or a string like "64MiB" or "200MB")`;
  return makeField({ ...o, type: "size", expect, unit: "bytes", pattern: SIZE_PATTERN }, (v, key, ctx) => {
    const s = parseSize(v);
    return s !== undefined && inRange(s, o.min, o.max) ? s : fail(ctx, key, expect, v);
  });
}

/**
 * A list of up to `max` strings, each matching `pattern` and passing `test` (as for str); the meaning is
 * checked by whoever uses them.
 */
export function strList(
  o: FieldOptions & {
    default: readonly string[];
    max: number;
    expect: string;
    pattern?: string;
    test?: (s: string) => boolean;
  },
): Field<readonly string[]> {
  const ok = stringTest(o.pattern, o.test);
  const data = {
    type: "list" as const,
    description: o.description,
    restart: o.restart,
    expect: `a list of up to ${o.max} strings`,
    default: o.default,
    min: 0,
    max: o.max,
    items: { expect: o.expect, pattern: o.pattern },
  };
  return makeField(data, (v, key, ctx) => {
    const list = checkList(v, key, ctx, "strings", 0, o.max);
    if (list === undefined) return INVALID;
    let bad = false;
    list.forEach((item, i) => {
      if (!ok(item)) {
        bad = true;
        fail(ctx, ctx.item(key, i), o.expect, item);
      }
    });
    return bad ? INVALID : (list as string[]);
  });
}
