import type { ConfigProblem } from "./errors.ts";
import {
  type CheckContext,
  checkList,
  describeValue,
  type Field,
  type FieldOptions,
  INVALID,
  type Invalid,
  isField,
  isTable,
  makeField,
} from "./fields.ts";

/** A schema table: kebab-case keys to fields (leaves) or nested tables (TOML sections). */
export type Schema = { readonly [key: string]: Field<unknown> | Schema };

/** "hold-time" -> "holdTime", at the type level. */
export type CamelCase<S extends string> = S extends `${infer H}-${infer T}`
  ? `${H}${Capitalize<CamelCase<T>>}`
  : S;

/** The validated, frozen value a schema describes, with camelCase property names. */
export type ValueOf<S> = {
  readonly [K in keyof S & string as CamelCase<K>]: S[K] extends Field<infer T> ? T : ValueOf<S[K]>;
};

export function camelCase(key: string): string {
  return key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Writes a path segment so that a key with dots or spaces cannot be mistaken for nesting. */
function joinKey(path: string, key: string): string {
  const seg = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  return path === "" ? seg : `${path}.${seg}`;
}

export const fileContext = (problems: ConfigProblem[]): CheckContext => ({
  problems,
  item: (key, i) => `${key}[${i}]`,
});

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** All leaf paths of a schema, in schema order ("server.listen", ...). */
export function fieldPaths(schema: Schema, path = ""): string[] {
  const out: string[] = [];
  for (const [k, node] of Object.entries(schema)) {
    const key = joinKey(path, k);
    if (isField(node)) out.push(key);
    else out.push(...fieldPaths(node, key));
  }
  return out;
}

/** Why a key is unknown, with the likeliest intended key: a typo, snake_case/camelCase, or the wrong section. */
function unknownKey(schema: Schema, root: Schema, path: string, key: string): string {
  const here = Object.keys(schema);
  const norm = key
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .replace(/_/g, "-")
    .toLowerCase();
  const close = here.find((k) => k === norm) ?? here.find((k) => editDistance(k, key) <= 2);
  const what = path === "" ? "unknown section or key" : "unknown key";
  if (close !== undefined) return `${what}; did you mean ${JSON.stringify(close)}?`;
  const elsewhere = fieldPaths(root).filter((p) => p.endsWith(`.${norm}`) || p === norm);
  if (elsewhere.length > 0) return `${what}; did you mean ${elsewhere.join(" or ")}?`;
  if (here.length === 0) return what;
  return `${what}; ${path === "" ? "known" : `${path} takes`}: ${here.join(", ")}`;
}

/**
 * Validates a raw TOML table against a schema: unknown keys are reported by name, missing keys take
 * their default, every problem goes to ctx (none stops the walk). The result is unfrozen.
 */
export function validateTable(
  schema: Schema,
  raw: unknown,
  path: string,
  ctx: CheckContext,
  root: Schema = schema,
): Record<string, unknown> {
  let table: Record<string, unknown> = {};
  if (raw !== undefined) {
    if (isTable(raw)) table = raw;
    else ctx.problems.push({ key: path, reason: `must be a table, got ${describeValue(raw)}` });
  }
  for (const k of Object.keys(table)) {
    if (!Object.hasOwn(schema, k)) {
      ctx.problems.push({ key: joinKey(path, k), reason: unknownKey(schema, root, path, k) });
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, node] of Object.entries(schema)) {
    const key = joinKey(path, k);
    const v = Object.hasOwn(table, k) ? table[k] : undefined;
    if (isField(node)) out[camelCase(k)] = v === undefined ? node.default : node.check(v, key, ctx);
    else out[camelCase(k)] = validateTable(node, v, key, ctx, root);
  }
  return out;
}

/** Defaults of a schema, unfrozen. */
export function defaultsOf(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, node] of Object.entries(schema)) {
    out[camelCase(k)] = isField(node) ? node.default : defaultsOf(node);
  }
  return out;
}

/**
 * A list of tables, each validated against `item` (`[[acl.rule]]`, `[[names.rule]]`). Problems inside name
 * the item: "acl.rule[2].prefix". A key in `required` must be given in every table (its default would
 * otherwise be taken, and a rule without it means nothing); all tables are checked for those first.
 */
export function tableList<S extends Schema>(
  item: S,
  o: FieldOptions & {
    max: number;
    default?: readonly ValueOf<S>[];
    required?: readonly (keyof S & string)[];
  },
): Field<readonly ValueOf<S>[]> & { readonly table: S } {
  const required = o.required ?? [];
  const check = (v: unknown, key: string, ctx: CheckContext): readonly ValueOf<S>[] | Invalid => {
    const before = ctx.problems.length;
    if (required.length > 0 && Array.isArray(v)) {
      v.forEach((el, i) => {
        if (!isTable(el)) return;
        for (const k of required) {
          if (!Object.hasOwn(el, k)) {
            ctx.problems.push({
              key: `${ctx.item(key, i)}.${k}`,
              reason: "is missing (every rule needs one)",
            });
          }
        }
      });
    }
    const list = checkList(v, key, ctx, "tables", 0, o.max);
    if (list === undefined) return INVALID;
    const out = list.map((el, i) => validateTable(item, el, ctx.item(key, i), ctx) as ValueOf<S>);
    return ctx.problems.length > before ? INVALID : out;
  };
  const data = {
    type: "tables" as const,
    description: o.description,
    restart: o.restart,
    expect: `a list of up to ${o.max} tables`,
    default: o.default ?? [],
    min: 0,
    max: o.max,
    table: item,
    required: o.required,
  };
  return makeField(data, check) as Field<readonly ValueOf<S>[]> & { readonly table: S };
}

/**
 * The keys a table of a list must give: those the list requires, and those whose default fails their own
 * check (a placeholder such as `[[acl.rule]] address = ""`, refused later when the rule is compiled).
 */
export function requiredKeys(field: Field<unknown>): string[] {
  const table = field.table ?? {};
  const out: string[] = [];
  for (const [k, node] of Object.entries(table)) {
    if (field.required?.includes(k) || (isField(node) && isPlaceholder(node))) out.push(k);
  }
  return out;
}

/** Whether a field's default is not itself a valid value (it stands for "no default"). */
export function isPlaceholder(field: Field<unknown>): boolean {
  return field.check(field.default, "", fileContext([])) === INVALID;
}

/** Freezes a value and everything reachable from it, so no part of a running config can be changed. */
export function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export interface ConfigChange {
  /** The file key that changed, e.g. "clock.stratum". */
  readonly key: string;
  /** True when the change only takes effect on restart. */
  readonly restart: boolean;
}

/** The keys whose values differ between two configs of the same schema (for SIGHUP reload logs). */
export function changedKeys(schema: Schema, a: unknown, b: unknown, path = ""): ConfigChange[] {
  const out: ConfigChange[] = [];
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const [k, node] of Object.entries(schema)) {
    const key = joinKey(path, k);
    const p = camelCase(k);
    if (isField(node)) {
      if (!sameValue(ra[p], rb[p])) out.push({ key, restart: node.restart });
    } else {
      out.push(...changedKeys(node, ra[p], rb[p], key));
    }
  }
  return out;
}
