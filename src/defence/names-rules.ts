// Dynamic access lists from reverse DNS (paper §10): "clients can be distinguished by domain, as determined by
// a reverse-DNS query ... only those with domain names ending in MIL would be accepted and added to the
// whitelist, while others would be added to the blacklist. The relatively expensive reverse-DNS query then
// needs to be done only once."
//
// The cold half of the pure code (docs/defences-names.md): host names and rule suffixes in canonical form,
// the ordered rules on suffixes, and the gate's options checked and compiled. Used when rules are loaded
// and when a lookup completes, never per packet: these allocate. The per-packet half, the verdict cache
// with its lookup limits and queue, is names-cache.ts.

import { DefenceError } from "./errors.ts";

// Verdicts of the rules (and of the cache, names-cache.ts, which adds NAME_PENDING and NAME_UNKNOWN).
/** Serve (the name matched an `allow` rule, or the default is allow). */
export const NAME_ALLOW = 1;
/** Drop (the name matched a `deny` rule, or the default is deny). */
export const NAME_DENY = 2;

/** The most lookups pending at once in one gate (the queue's fixed size). */
export const NAME_MAX_CONCURRENT = 256;
/** The smallest cache: it must stay well above the most pending entries, which are never evicted. */
export const NAME_MIN_CACHE = 1024;
/** The largest cache of one gate. */
export const NAME_MAX_CACHE = 1 << 24;

// ---------------------------------------------------------------------------------------------------------
// Names and rules. Used when a lookup completes and when rules are loaded, never per packet: these allocate.

/** Most labels and characters of a name (RFC 1035 §2.3.4: 63 per label, 255 octets on the wire). */
const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;

/** Letters, digits, hyphen, and the underscore that real PTR records sometimes carry. */
function isLabelChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 /* - */ || c === 95 /* _ */;
}

/** Whether s (already lower case, no trailing dot) is dot-separated labels of 1 to 63 label characters. */
function isLabels(s: string): boolean {
  if (s.length === 0 || s.length > MAX_NAME_LENGTH) return false;
  let label = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (label === 0) return false;
      label = 0;
    } else if (isLabelChar(c)) {
      if (++label > MAX_LABEL_LENGTH) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

/** ASCII lower case only (RFC 4343: DNS compares names case-insensitively, ASCII letters only). */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * The canonical form of a host name from a PTR record or a rule: ASCII lower case, one trailing dot (the
 * root) removed. Undefined when it is not a host name (empty, empty labels, characters other than letters,
 * digits, `-` and `_`, a label over 63 or a name over 253 characters): such a PTR name is ignored. Names
 * in other scripts arrive, and must be written in rules, in their ASCII (punycode, `xn--`) form.
 */
export function normalizeName(name: string): string | undefined {
  const s = asciiLower(name.endsWith(".") ? name.slice(0, -1) : name);
  return isLabels(s) ? s : undefined;
}

/**
 * The canonical form of a rule's suffix: a domain, with an optional leading dot (".mil" and "mil" are the
 * same rule) and an optional trailing dot; "." alone is the root, which every name is under. Undefined
 * when it is not one ("", "*.mil", "a..b").
 */
export function normalizeSuffix(suffix: string): string | undefined {
  if (suffix === ".") return "";
  const s = suffix.startsWith(".") ? suffix.slice(1) : suffix;
  return normalizeName(s);
}

/** Whether a configured suffix is valid (the config schema's test). */
export function isNameSuffix(suffix: string): boolean {
  return normalizeSuffix(suffix) !== undefined;
}

/**
 * Whether `name` (canonical) is `suffix` (canonical) or a name below it. The match is on whole labels:
 * "mil" covers "mil", "army.mil" and "a.b.army.mil", never "evilmil" or "mil.example". The root ("")
 * covers every name.
 */
export function isUnderSuffix(name: string, suffix: string): boolean {
  if (suffix === "") return true;
  if (name.length === suffix.length) return name === suffix;
  return (
    name.length > suffix.length &&
    name.endsWith(suffix) &&
    name.charCodeAt(name.length - suffix.length - 1) === 46 /* . */
  );
}

export type NameAction = "allow" | "deny";

/** One rule as configured: `{ suffix = ".mil", action = "allow" }`. */
export interface NameRuleInput {
  readonly suffix: string;
  readonly action: string;
}

function verdictOf(action: string, what: string): number {
  if (action === "allow") return NAME_ALLOW;
  if (action === "deny") return NAME_DENY;
  throw new DefenceError(
    "ERR_DEFENCE_OPTION",
    `${what} must be "allow" or "deny", got ${JSON.stringify(action)}`,
  );
}

/** Ordered rules on name suffixes: the first rule whose suffix covers the name decides. */
export class NameRules {
  /** Canonical suffixes, in order ("" = the root). */
  readonly suffixes: readonly string[];
  /** NAME_ALLOW or NAME_DENY of each rule. */
  readonly verdicts: readonly number[];
  /** The verdict for a name no rule covers, and for an address with no confirmed name. */
  readonly defaultVerdict: number;

  constructor(rules: readonly NameRuleInput[], defaultAction: string) {
    const suffixes: string[] = [];
    const verdicts: number[] = [];
    rules.forEach((r, i) => {
      const s = normalizeSuffix(r.suffix);
      if (s === undefined) {
        throw new DefenceError(
          "ERR_DEFENCE_OPTION",
          `rule ${i}: suffix must be a domain such as ".mil" or "example.org" (or "." for every name), got ${JSON.stringify(r.suffix)}`,
        );
      }
      suffixes.push(s);
      verdicts.push(verdictOf(r.action, `rule ${i}: action`));
    });
    this.suffixes = Object.freeze(suffixes);
    this.verdicts = Object.freeze(verdicts);
    this.defaultVerdict = verdictOf(defaultAction, "the default action");
  }

  get length(): number {
    return this.suffixes.length;
  }

  /** Index of the first rule covering `name` (raw: it is normalized here), or -1 (none, or not a name). */
  matchIndex(name: string): number {
    const n = normalizeName(name);
    if (n === undefined) return -1;
    for (let i = 0; i < this.suffixes.length; i++) if (isUnderSuffix(n, this.suffixes[i]!)) return i;
    return -1;
  }

  /** The verdict for a confirmed name, or for none (null): the first covering rule's, else the default. */
  verdict(name: string | null): number {
    if (name === null) return this.defaultVerdict;
    const i = this.matchIndex(name);
    return i < 0 ? this.defaultVerdict : this.verdicts[i]!;
  }

  /** Whether two rule sets decide every name alike (same rules in the same order, same default). */
  sameAs(other: NameRules): boolean {
    return (
      this.defaultVerdict === other.defaultVerdict &&
      this.suffixes.length === other.suffixes.length &&
      this.suffixes.every((s, i) => s === other.suffixes[i] && this.verdicts[i] === other.verdicts[i])
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// The gate's options, checked and compiled for names-cache.ts.

/** Options of a gate. Seconds and per-second rates, like the configuration. */
export interface NameGateOptions {
  /** Ordered rules; none = the gate is inactive and nothing is ever looked up. */
  rules?: readonly NameRuleInput[];
  /** "allow" (default) or "deny": for names no rule covers and addresses with no confirmed name. */
  default?: string;
  /** "serve" (default) or "drop": what the pipeline does with a packet whose verdict is pending. */
  pending?: string;
  /** How long a verdict from a confirmed name is kept (default 3600 s). */
  ttl?: number;
  /** How long a verdict without one (no PTR, forged PTR, failed lookup) is kept (default 300 s). */
  negativeTtl?: number;
  /** Most lookups pending at once, server-wide (default 16, at most NAME_MAX_CONCURRENT). */
  maxConcurrent?: number;
  /** New lookups per second, server-wide: a token bucket holding one second's worth, at least 1 (default 20). */
  maxRate?: number;
  /** Entries of the cache (default 65536; NAME_MIN_CACHE to NAME_MAX_CACHE). Fixed at creation. */
  cacheSize?: number;
  /** Hash seed (default random, so that a flood cannot pick addresses that share a chain). Creation only. */
  seed?: number;
}

export const NAME_GATE_DEFAULTS = Object.freeze({
  default: "allow",
  pending: "serve",
  ttl: 3600,
  negativeTtl: 300,
  maxConcurrent: 16,
  maxRate: 20,
  cacheSize: 65536,
});

/** The `[names]` section as the configuration holds it (structurally: this module imports no config). */
export interface NameConfigLike {
  readonly rule: readonly NameRuleInput[];
  readonly default: string;
  readonly pending: string;
  readonly ttl: number;
  readonly negativeTtl: number;
  readonly maxConcurrent: number;
  readonly maxRate: number;
  readonly cacheSize: number;
}

/** Gate options from the `[names]` section. */
export function nameGateOptions(c: NameConfigLike): NameGateOptions {
  return {
    rules: c.rule,
    default: c.default,
    pending: c.pending,
    ttl: c.ttl,
    negativeTtl: c.negativeTtl,
    maxConcurrent: c.maxConcurrent,
    maxRate: c.maxRate,
    cacheSize: c.cacheSize,
  };
}

/** A 32-bit hash of rules text (only to tell whether another thread already judged by the same rules). */
function textHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new DefenceError("ERR_DEFENCE_OPTION", message);
}

/** A gate's options (all but the cache size and seed), checked, with the defaults filled in. */
export interface CompiledNameOptions {
  readonly rules: NameRules;
  /** textHash of the rules and default: equal for rule sets that decide alike. */
  readonly rulesHash: number;
  readonly dropPending: boolean;
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly maxConcurrent: number;
  /** New lookups per second. */
  readonly maxRate: number;
}

/** Checks a gate's options and fills in the defaults; throws a DefenceError naming the first bad one. */
export function compileNameOptions(options: NameGateOptions): CompiledNameOptions {
  const d = NAME_GATE_DEFAULTS;
  const rules = new NameRules(options.rules ?? [], options.default ?? d.default);
  const pending = options.pending ?? d.pending;
  const ttl = options.ttl ?? d.ttl;
  const negativeTtl = options.negativeTtl ?? d.negativeTtl;
  const maxConcurrent = options.maxConcurrent ?? d.maxConcurrent;
  const maxRate = options.maxRate ?? d.maxRate;
  check(pending === "serve" || pending === "drop", 'pending must be "serve" or "drop"');
  check(ttl > 0 && Number.isFinite(ttl), "ttl must be a number of seconds > 0");
  check(negativeTtl > 0 && Number.isFinite(negativeTtl), "negativeTtl must be a number of seconds > 0");
  check(
    Number.isInteger(maxConcurrent) && maxConcurrent >= 1 && maxConcurrent <= NAME_MAX_CONCURRENT,
    `maxConcurrent must be an integer from 1 to ${NAME_MAX_CONCURRENT}`,
  );
  check(maxRate > 0 && Number.isFinite(maxRate), "maxRate must be a number of lookups per second > 0");
  return {
    rules,
    rulesHash: textHash(
      JSON.stringify([rules.defaultVerdict, ...rules.suffixes.map((x, i) => `${rules.verdicts[i]}${x}`)]),
    ),
    dropPending: pending === "drop",
    ttlMs: ttl * 1000,
    negativeTtlMs: negativeTtl * 1000,
    maxConcurrent,
    maxRate,
  };
}

/** The cache size of a new gate, checked (fixed at creation, so not part of CompiledNameOptions). */
export function nameCacheSize(options: NameGateOptions): number {
  const cacheSize = options.cacheSize ?? NAME_GATE_DEFAULTS.cacheSize;
  check(
    Number.isInteger(cacheSize) && cacheSize >= NAME_MIN_CACHE && cacheSize <= NAME_MAX_CACHE,
    `cacheSize must be an integer from ${NAME_MIN_CACHE} to ${NAME_MAX_CACHE}`,
  );
  return cacheSize;
}
