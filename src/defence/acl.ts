// Static access control lists (paper §10: "ACL features have been included in the NTP public
// distributions for many years and have been used to control access for time services and monitoring
// services"). Rules by address and prefix carry ntpd's restriction flags; the longest matching prefix
// decides, and a default rule covers every address no rule matches.
//
// Addresses are 128-bit keys held in four uint32 words, most significant word first, each word's most
// significant bit first (key[0] >>> 31 is the address's first bit). IPv4 is mapped into ::ffff:0:0/96
// (RFC 4291 §2.5.5.2), so an IPv4 rule a.b.c.d/n is the IPv6 rule ::ffff:a.b.c.d/(96+n) and matches a
// client whether it arrived on an IPv4 socket or as an IPv4-mapped address on a dual-stack one.
//
// The rules are compiled into a nibble trie (4 bits per level, at most 32 levels) in one Int32Array,
// with controlled prefix expansion and leaf pushing: every slot holds either a child node or the final
// answer, so a lookup walks the key's nibbles until it meets an answer, reading only integers. No
// objects are walked and nothing is allocated per packet. The table is immutable once built; a reload
// builds a new one and swaps one reference.

import { CodedError } from "../base/errors.ts";
import { isIPv4Key, KEY_WORDS, parseAddressKey } from "./address-key.ts";

/** Drop silently: no reply, no MRU entry (ntpd `ignore`). */
export const ACL_IGNORE = 1;
/** No time service: mode 3 (and mode 1) requests are refused (ntpd `noserve`). */
export const ACL_NOSERVE = 2;
/** No monitoring: mode 6 and mode 7 requests are refused (ntpd `noquery`). */
export const ACL_NOQUERY = 4;
/** Subject to call-gap (paper §12); without it the client is never gapped (ntpd `limited`). */
export const ACL_LIMITED = 8;
/** Send a kiss-o'-death when refusing or gapping instead of dropping silently (paper §11; ntpd `kod`). */
export const ACL_KOD = 16;
/** Not recorded in the MRU list (paper §5; ntpd `nomrulist`). */
export const ACL_NOMRULIST = 32;
/** Every flag bit defined above. */
export const ACL_ALL_FLAGS = 63;

export type AclFlagName = "ignore" | "noserve" | "noquery" | "limited" | "kod" | "nomrulist";

/** Each flag's name and bit, in the order the decision applies them (docs/defences-acl.md). */
export const ACL_FLAG_BITS: Readonly<Record<AclFlagName, number>> = Object.freeze({
  ignore: ACL_IGNORE,
  noserve: ACL_NOSERVE,
  noquery: ACL_NOQUERY,
  limited: ACL_LIMITED,
  kod: ACL_KOD,
  nomrulist: ACL_NOMRULIST,
});

const FLAG_NAMES = Object.keys(ACL_FLAG_BITS) as AclFlagName[];

/** The match index returned for an address no rule covers: the default rule applies. */
export const ACL_DEFAULT_RULE = -1;

/**
 * Upper bound on rules. Each rule adds at most 31 trie nodes of 64 bytes, so the table stays under
 * about 20 MB however the rules are chosen (usually far less: rules share their upper levels).
 */
export const ACL_MAX_RULES = 10_000;

// ntpd/NTPsec flags an operator may carry over that mean nothing here, with the reason, so that a
// migrated `restrict` line fails with an explanation rather than "unknown flag".
const NTPD_ONLY: Readonly<Record<string, string>> = {
  nomodify: "ntpshield has no remote configuration to forbid",
  notrap: "ntpshield has no mode 6 trap service",
  nopeer: "ntpshield never mobilizes associations for unknown peers",
  noepeer: "ntpshield never mobilizes associations for unknown peers",
  notrust: "ntpshield has no symmetric-key authentication of clients",
  version: "old request versions are handled by the packet checks, not the access list",
  ntpport: "matching by source port is not supported",
  mssntp: "MS-SNTP signing is not supported",
  lowpriotrap: "ntpshield has no mode 6 trap service",
};

/** The names of the flags set in a bitmask, in ACL_FLAG_BITS order. */
export function aclFlagNames(flags: number): AclFlagName[] {
  return FLAG_NAMES.filter((n) => (flags & ACL_FLAG_BITS[n]) !== 0);
}

export type AclErrorCode = "ERR_ACL_INVALID" | "ERR_ACL_BAD_ADDRESS";

/** One thing wrong with the rules: the key path ("acl.rule[3].address") and what is wrong with it. */
export interface AclProblem {
  readonly key: string;
  readonly reason: string;
}

/**
 * Invalid access rules (ERR_ACL_INVALID, with every problem found, each naming its key, so the lead's
 * config loader can report them as ConfigProblems), or an unparseable address handed to lookupString
 * (ERR_ACL_BAD_ADDRESS).
 */
export class AclError extends CodedError<AclErrorCode> {
  readonly key: string;
  readonly reason: string;
  readonly problems: readonly AclProblem[];

  constructor(code: AclErrorCode, problems: readonly AclProblem[]) {
    const first = problems[0] ?? { key: "", reason: "invalid access list" };
    const line = (p: AclProblem) => (p.key === "" ? p.reason : `${p.key}: ${p.reason}`);
    super(
      code,
      problems.length <= 1
        ? line(first)
        : `${problems.length} problems:\n${problems.map((p) => `  ${line(p)}`).join("\n")}`,
    );
    this.key = first.key;
    this.reason = first.reason;
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ key: p.key, reason: p.reason })));
  }
}

// ---------------------------------------------------------------------------------------------------
// Address text, parsed only when rules are loaded and by lookupString (tools, tests), with the same
// parser that makes the server's per-packet keys (address-key.ts), so a rule and a client can never
// disagree on what an address is.

/** Canonical text of a prefix: dotted quad for the IPv4-mapped range, RFC 5952 §4 text otherwise. */
function formatPrefix(w: ArrayLike<number>, len: number): string {
  if (isIPv4Key(w) && len >= 96) {
    const v = w[3]!;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/${len - 96}`;
  }
  const g: number[] = [];
  for (let i = 0; i < 4; i++) g.push(w[i]! >>> 16, w[i]! & 0xffff);
  // The longest run of two or more zero groups becomes "::" (RFC 5952 §4.2), the first on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  const text = best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
  return `${text}/${len}`;
}

/** A mask word for bits [32*i, 32*i+32) under a prefix of `len` bits. */
function maskWord(i: number, len: number): number {
  const bits = Math.min(32, Math.max(0, len - 32 * i));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

interface ParsedPrefix {
  readonly words: Uint32Array;
  readonly len: number;
}

/** One rule's address ("192.0.2.0/24", "2001:db8::/32", "192.0.2.1") or why it is not one. */
function parsePrefix(text: string): ParsedPrefix | string {
  if (text === "") return "is empty";
  if (text.includes("%")) return 'a zone ("%...") has no place in an access rule';
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const words = new Uint32Array(KEY_WORDS);
  if (!parseAddressKey(addr, words)) {
    return /^[0-9.]+$/.test(addr)
      ? "not a valid IPv4 address (four decimal numbers 0-255, no leading zeros)"
      : "not an IPv4 or IPv6 address";
  }
  // IPv4 text (no colon) takes a 0-32 prefix; IPv6 text, even "::ffff:a.b.c.d", a 0-128 one.
  const v4 = !addr.includes(":");
  const max = v4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return `prefix length must be 0-${max}`;
    len = Number(p);
  }
  if (v4) len += 96;
  // Reject rather than mask host bits (ntpd masks silently): "192.0.2.77/24" may mean the host or the
  // network, and guessing wrong widens or narrows an access rule without a word.
  let hostBits = false;
  const net = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    net[i] = (words[i]! & maskWord(i, len)) >>> 0;
    if (net[i] !== words[i]) hostBits = true;
  }
  if (hostBits) {
    const n = text.slice(slash + 1);
    return `host bits are set beyond /${n} (write "${formatPrefix(net, len)}" for the network, "${addr}" for the one host)`;
  }
  return { words, len };
}

function quote(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

function parseFlags(list: unknown, key: string, problems: AclProblem[]): number {
  if (!Array.isArray(list)) {
    problems.push({ key, reason: `must be a list of flag names, got ${quote(list)}` });
    return 0;
  }
  let flags = 0;
  list.forEach((f: unknown, j) => {
    const k = `${key}[${j}]`;
    if (typeof f !== "string") {
      problems.push({ key: k, reason: `must be a flag name, got ${quote(f)}` });
    } else if (Object.hasOwn(ACL_FLAG_BITS, f)) {
      const bit = ACL_FLAG_BITS[f as AclFlagName];
      if ((flags & bit) !== 0) problems.push({ key: k, reason: `flag ${quote(f)} is listed twice` });
      flags |= bit;
    } else if (Object.hasOwn(NTPD_ONLY, f)) {
      problems.push({ key: k, reason: `the ntpd flag ${quote(f)} has no meaning here: ${NTPD_ONLY[f]}` });
    } else {
      problems.push({ key: k, reason: `unknown flag ${quote(f)}; known flags: ${FLAG_NAMES.join(", ")}` });
    }
  });
  return flags;
}

/** One compiled rule, for display (ntpq-style views, logs). */
export interface AclRule {
  /** Position in the configuration's `[[acl.rule]]` list, from 0: what `match` returns. */
  readonly index: number;
  /** Canonical prefix text: "192.0.2.0/24" for IPv4 (and IPv4-mapped), "2001:db8::/32" otherwise. */
  readonly prefix: string;
  /** ACL_* bits. */
  readonly flags: number;
}

/** The rule list as configured: `[[acl.rule]] address = "..." flags = [...]`. */
export interface AclRuleInput {
  readonly address: string;
  readonly flags: readonly string[];
}

/**
 * Validates and compiles the rules. Throws AclError (ERR_ACL_INVALID) listing every problem, each under
 * its key: "acl.rule[3].address", "acl.rule[3].flags[1]", "acl.default[0]", "acl.rule".
 */
export function parseAclRules(rules: readonly AclRuleInput[], defaultFlags: readonly string[]): AclTable {
  const problems: AclProblem[] = [];
  const dflt = parseFlags(defaultFlags, "acl.default", problems);
  if (!Array.isArray(rules)) {
    problems.push({ key: "acl.rule", reason: "must be a list of rules" });
    throw new AclError("ERR_ACL_INVALID", problems);
  }
  if (rules.length > ACL_MAX_RULES) {
    problems.push({ key: "acl.rule", reason: `at most ${ACL_MAX_RULES} rules, got ${rules.length}` });
    throw new AclError("ERR_ACL_INVALID", problems);
  }
  const compiled: { words: Uint32Array; len: number; flags: number; index: number; prefix: string }[] = [];
  const seen = new Map<string, number>();
  rules.forEach((r, i) => {
    const key = `acl.rule[${i}]`;
    if (typeof r !== "object" || r === null) {
      problems.push({ key, reason: `must be a table with address and flags, got ${quote(r)}` });
      return;
    }
    const flags = parseFlags(r.flags, `${key}.flags`, problems);
    if (typeof r.address !== "string") {
      problems.push({ key: `${key}.address`, reason: `must be a string, got ${quote(r.address)}` });
      return;
    }
    const p = parsePrefix(r.address);
    if (typeof p === "string") {
      problems.push({ key: `${key}.address`, reason: `${p}, got ${quote(r.address)}` });
      return;
    }
    const prefix = formatPrefix(p.words, p.len);
    const before = seen.get(prefix);
    if (before !== undefined) {
      problems.push({
        key: `${key}.address`,
        reason: `duplicate of acl.rule[${before}] (both are ${prefix}), got ${quote(r.address)}`,
      });
      return;
    }
    seen.set(prefix, i);
    compiled.push({ words: p.words, len: p.len, flags, index: i, prefix });
  });
  if (problems.length > 0) throw new AclError("ERR_ACL_INVALID", problems);
  return new AclTable(BUILD, compiled, dflt);
}

const STRIDE = 4;
const FANOUT = 1 << STRIDE;

/** The nibble of a 128-bit key at depth d (0-31). */
function nibble(w: ArrayLike<number>, d: number): number {
  return (w[d >>> 3]! >>> (28 - 4 * (d & 7))) & 15;
}

// Slot encoding: a negative value is an answer, -(match + 2), so -1 is the default rule and -2 rule 0;
// a positive value is the offset of a child node. The root is at offset 0 and is nobody's child.
const leaf = (match: number) => -(match + 2);

const scratchKey = new Uint32Array(KEY_WORDS);

// Only parseAclRules builds tables: the constructor trusts its input to be validated.
const BUILD: unique symbol = Symbol("AclTable.build");

/** A compiled, immutable access list. Build it with parseAclRules. */
export class AclTable {
  readonly #trie: Int32Array;
  /** Flags by match + 1: [default, rule 0, rule 1, ...]. */
  readonly #flags: Int32Array;
  /** Where IPv4-mapped keys resume the walk at depth 24: a node offset, or an answer if negative. */
  readonly #v4Start: number;
  /** Every rule in configuration order, frozen. */
  readonly rules: readonly AclRule[];
  /** Flags for addresses no rule matches. */
  readonly defaultFlags: number;

  /** Not for callers: use parseAclRules. */
  constructor(
    token: typeof BUILD,
    compiled: readonly { words: Uint32Array; len: number; flags: number; index: number; prefix: string }[],
    defaultFlags: number,
  ) {
    if (token !== BUILD) throw new TypeError("AclTable is built by parseAclRules");
    this.defaultFlags = defaultFlags;
    const byIndex = [...compiled].sort((a, b) => a.index - b.index);
    const count = byIndex.length === 0 ? 0 : byIndex[byIndex.length - 1]!.index + 1;
    const flags = new Int32Array(count + 1);
    flags[0] = defaultFlags;
    for (const r of byIndex) flags[r.index + 1] = r.flags;
    this.#flags = flags;
    this.rules = Object.freeze(
      byIndex.map((r) => Object.freeze({ index: r.index, prefix: r.prefix, flags: r.flags })),
    );

    // Shorter prefixes first: a longer rule then only ever overwrites answers of shorter ones, and
    // finds leaves (never children) in the slots it expands into, since children exist only under
    // rules longer than it.
    const order = [...compiled].sort((a, b) => a.len - b.len);
    let t = new Int32Array(FANOUT * 64);
    let used = FANOUT;
    t.fill(leaf(ACL_DEFAULT_RULE), 0, FANOUT);
    for (const r of order) {
      const last = r.len === 0 ? 0 : Math.ceil(r.len / STRIDE) - 1;
      let base = 0;
      for (let d = 0; d < last; d++) {
        const slot = base + nibble(r.words, d);
        const v = t[slot]!;
        if (v >= 0) {
          base = v;
          continue;
        }
        // Push the answer found here down into a new node, which the longer rule then refines.
        if (used + FANOUT > t.length) {
          const bigger = new Int32Array(t.length * 2);
          bigger.set(t);
          t = bigger;
        }
        t.fill(v, used, used + FANOUT);
        t[slot] = used;
        base = used;
        used += FANOUT;
      }
      // Controlled prefix expansion: a prefix ending inside a nibble covers 2^(4 - bits) slots.
      const span = 1 << (STRIDE * (last + 1) - r.len);
      const first = nibble(r.words, last) & ~(span - 1);
      t.fill(leaf(r.index), base + first, base + first + span);
    }
    this.#trie = t.slice(0, used);

    // The first 96 bits of every IPv4-mapped key are the same: walk them once, here.
    let start = 0;
    const mapped = [0, 0, 0xffff, 0];
    for (let d = 0; d < 24 && start >= 0; d++) start = this.#trie[start + nibble(mapped, d)]!;
    this.#v4Start = start;
  }

  /**
   * The index of the rule that decides for `key` (four words, see the file header), or
   * ACL_DEFAULT_RULE (-1). Allocation-free; at most 32 array reads (8 for IPv4-mapped keys).
   */
  match(key: Uint32Array): number {
    const t = this.#trie;
    let base = 0;
    let w = 0;
    if (key[2] === 0xffff && key[0] === 0 && key[1] === 0) {
      base = this.#v4Start;
      if (base < 0) return -base - 2;
      w = 3;
    }
    for (; w < 4; w++) {
      const word = key[w]!;
      for (let shift = 28; shift >= 0; shift -= STRIDE) {
        const v = t[base + ((word >>> shift) & 15)]!;
        if (v < 0) return -v - 2;
        base = v;
      }
    }
    return ACL_DEFAULT_RULE; // not reached: every slot at depth 31 is an answer
  }

  /** The ACL_* flags that apply to `key`: those of the longest matching rule, else the default's. */
  lookup(key: Uint32Array): number {
    return this.#flags[this.match(key) + 1]!;
  }

  /** The flags of a match index (ACL_DEFAULT_RULE gives defaultFlags). */
  flagsOf(match: number): number {
    return this.#flags[match + 1] ?? 0;
  }

  /** match() for address text (IPv4, IPv6, IPv4-mapped, "%zone" ignored). Throws ERR_ACL_BAD_ADDRESS. */
  matchString(address: string): number {
    if (!parseAddressKey(address, scratchKey)) {
      throw new AclError("ERR_ACL_BAD_ADDRESS", [
        { key: "", reason: `not an IPv4 or IPv6 address, got ${quote(address)}` },
      ]);
    }
    return this.match(scratchKey);
  }

  /** lookup() for address text, for tests and tools; the server uses keys from address-key.ts. */
  lookupString(address: string): number {
    return this.#flags[this.matchString(address) + 1]!;
  }

  /** Trie nodes (16 slots of 4 bytes each), for metrics and the benchmark. */
  get nodeCount(): number {
    return this.#trie.length / FANOUT;
  }

  /** Bytes held by the compiled trie. */
  get byteLength(): number {
    return this.#trie.byteLength + this.#flags.byteLength;
  }
}
