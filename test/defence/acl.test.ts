import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  ACL_ALL_FLAGS,
  ACL_DEFAULT_RULE,
  ACL_FLAG_BITS,
  ACL_IGNORE,
  ACL_KOD,
  ACL_LIMITED,
  ACL_MAX_RULES,
  ACL_NOMRULIST,
  ACL_NOQUERY,
  ACL_NOSERVE,
  AclError,
  type AclRuleInput,
  aclFlagNames,
  parseAclRules,
} from "../../src/defence/acl.ts";

// --- An independent model: addresses as bigints, rules scanned one by one, the longest match wins. ---

const toBig = (w: readonly number[]) =>
  (BigInt(w[0]!) << 96n) | (BigInt(w[1]!) << 64n) | (BigInt(w[2]!) << 32n) | BigInt(w[3]!);

interface ModelRule {
  words: number[];
  len: number;
  flags: number;
  text: string;
}

function naiveMatch(rules: readonly ModelRule[], addr: readonly number[]): number {
  const a = toBig(addr);
  let best = -1;
  let bestLen = -1;
  rules.forEach((r, i) => {
    const shift = BigInt(128 - r.len);
    if (a >> shift === toBig(r.words) >> shift && r.len > bestLen) {
      best = i;
      bestLen = r.len;
    }
  });
  return best;
}

function maskWords(w: readonly number[], len: number): number[] {
  return w.map((x, i) => {
    const bits = Math.min(32, Math.max(0, len - 32 * i));
    return bits === 0 ? 0 : (x & ((0xffffffff << (32 - bits)) >>> 0)) >>> 0;
  });
}

const dotted = (v: number) => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;

function groupsOf(w: readonly number[]): number[] {
  return w.flatMap((x) => [x >>> 16, x & 0xffff]);
}

/** IPv6 text in one of several legal spellings, chosen by `style`. */
function v6Text(w: readonly number[], style: number): string {
  const g = groupsOf(w);
  if (style === 0) return g.map((x) => x.toString(16).padStart(4, "0")).join(":"); // full, zero-padded
  if (style === 1) return g.map((x) => x.toString(16).toUpperCase()).join(":"); // upper case, no "::"
  if (style === 2 && g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0) {
    return `::${g[5]!.toString(16)}:${dotted(w[3]!)}`; // trailing dotted quad
  }
  // "::" for the longest run of zeros (even a single group, which RFC 4291 allows when reading).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

const isMappedWords = (w: readonly number[]) => w[0] === 0 && w[1] === 0 && w[2] === 0xffff;

/** Address text for a key: IPv4 forms for mapped keys, IPv6 forms otherwise, sometimes with a zone. */
function addrText(w: readonly number[], style: number): string {
  if (isMappedWords(w)) {
    if (style % 3 === 0) return dotted(w[3]!);
    if (style % 3 === 1) return `::ffff:${dotted(w[3]!)}`;
  }
  return v6Text(w, style % 4) + (style >= 6 ? "%eth0" : "");
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const words = fc.tuple(u32, u32, u32, u32).map((t) => [...t]);
const mappedWords = u32.map((v) => [0, 0, 0xffff, v]);

/** A few base addresses, so that random rules overlap and random addresses fall inside them. */
const pool = fc.array(fc.oneof(words, mappedWords, fc.constant<number[]>([0x20010db8, 0, 0, 0])), {
  minLength: 1,
  maxLength: 6,
});

interface Scenario {
  rules: ModelRule[];
  defaultFlags: number;
  addrs: { w: number[]; style: number }[];
}

const scenario: fc.Arbitrary<Scenario> = pool.chain((bases) => {
  const base = fc.constantFrom(...bases);
  const rule = fc
    .record({
      b: base,
      noise: words,
      v4: fc.boolean(),
      len4: fc.integer({ min: 0, max: 32 }),
      len6: fc.oneof(fc.integer({ min: 0, max: 128 }), fc.constantFrom(0, 1, 4, 31, 32, 64, 96, 127, 128)),
      keep: fc.integer({ min: 0, max: 128 }),
      flags: fc.integer({ min: 0, max: ACL_ALL_FLAGS }),
      style: fc.integer({ min: 0, max: 5 }),
    })
    .map(({ b, noise, v4, len4, len6, keep, flags, style }): ModelRule => {
      // Keep the base's first `keep` bits and randomise the rest, so rules nest at many depths.
      const mixed = maskWords(b, keep).map(
        (x, i) => (x | (noise[i]! & ~maskWords([-1, -1, -1, -1], keep)[i]!)) >>> 0,
      );
      if (v4) {
        const w = maskWords([0, 0, 0xffff, mixed[3]!], 96 + len4);
        const mappedSpelling = style === 5;
        const text = mappedSpelling
          ? `::ffff:${dotted(w[3]!)}/${96 + len4}`
          : len4 === 32 && style % 2 === 0
            ? dotted(w[3]!)
            : `${dotted(w[3]!)}/${len4}`;
        return { words: w, len: 96 + len4, flags, text };
      }
      const w = maskWords(mixed, len6);
      const text = len6 === 128 && style % 2 === 0 ? v6Text(w, style % 4) : `${v6Text(w, style % 4)}/${len6}`;
      return { words: w, len: len6, flags, text };
    });
  const rules = fc
    .array(rule, { maxLength: 60 })
    .map((rs) =>
      rs.filter((r, i) => rs.findIndex((q) => q.len === r.len && toBig(q.words) === toBig(r.words)) === i),
    );
  const addr = fc.record({
    w: fc.oneof(
      fc
        .tuple(base, words, fc.integer({ min: 0, max: 128 }))
        .map(([b, n, keep]) =>
          maskWords(b, keep).map((x, i) => (x | (n[i]! & ~maskWords([-1, -1, -1, -1], keep)[i]!)) >>> 0),
        ),
      base,
      words,
      mappedWords,
    ),
    style: fc.integer({ min: 0, max: 7 }),
  });
  return fc.record({
    rules,
    defaultFlags: fc.integer({ min: 0, max: ACL_ALL_FLAGS }),
    addrs: fc.array(addr, { minLength: 1, maxLength: 40 }),
  });
});

function inputs(rules: readonly ModelRule[]): AclRuleInput[] {
  return rules.map((r) => ({ address: r.text, flags: aclFlagNames(r.flags) }));
}

function problemsOf(fn: () => unknown): [string, string][] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AclError, String(e));
    assert.equal(e.code, "ERR_ACL_INVALID");
    return e.problems.map((p) => [p.key, p.reason]);
  }
  assert.fail("expected an AclError");
}

function key(text: string): Uint32Array {
  // Build keys by hand (not through the module's parser) for the fixed cases.
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (m)
    return new Uint32Array([0, 0, 0xffff, ((+m[1]! << 24) | (+m[2]! << 16) | (+m[3]! << 8) | +m[4]!) >>> 0]);
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head === "" ? [] : head.split(":").map((x) => Number.parseInt(x, 16));
  const t = tail === undefined || tail === "" ? [] : tail.split(":").map((x) => Number.parseInt(x, 16));
  const g = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  return new Uint32Array([0, 1, 2, 3].map((i) => ((g[2 * i]! << 16) | g[2 * i + 1]!) >>> 0));
}

describe("acl flags", () => {
  it("are distinct single bits whose union is ACL_ALL_FLAGS", () => {
    const bits = Object.values(ACL_FLAG_BITS);
    assert.deepEqual(
      [ACL_IGNORE, ACL_NOSERVE, ACL_NOQUERY, ACL_LIMITED, ACL_KOD, ACL_NOMRULIST],
      [1, 2, 4, 8, 16, 32],
    );
    assert.equal(
      bits.reduce((a, b) => a | b, 0),
      ACL_ALL_FLAGS,
    );
    assert.equal(new Set(bits).size, 6);
  });

  it("name round trip", () => {
    for (let f = 0; f <= ACL_ALL_FLAGS; f++) {
      const acl = parseAclRules([], aclFlagNames(f));
      assert.equal(acl.defaultFlags, f);
    }
    assert.deepEqual(aclFlagNames(ACL_KOD | ACL_LIMITED), ["limited", "kod"]);
  });
});

describe("acl lookup", () => {
  it("gives the default flags when no rule matches, including with no rules at all", () => {
    const acl = parseAclRules([], ["limited", "kod"]);
    assert.equal(acl.lookupString("192.0.2.1"), ACL_LIMITED | ACL_KOD);
    assert.equal(acl.lookupString("2001:db8::1"), ACL_LIMITED | ACL_KOD);
    assert.equal(acl.matchString("::"), ACL_DEFAULT_RULE);
    const acl2 = parseAclRules([{ address: "192.0.2.0/24", flags: ["ignore"] }], []);
    assert.equal(acl2.lookupString("192.0.3.1"), 0);
    assert.equal(acl2.lookupString("192.0.2.255"), ACL_IGNORE);
  });

  it("picks the longest prefix whatever the order of the rules", () => {
    const rules = [
      { address: "10.0.0.0/8", flags: ["noserve"] },
      { address: "10.1.0.0/16", flags: ["limited"] },
      { address: "10.1.2.0/23", flags: ["kod"] },
      { address: "10.1.2.3", flags: [] },
    ];
    for (const order of [rules, [...rules].reverse()]) {
      const acl = parseAclRules(order, ["ignore"]);
      assert.equal(acl.lookupString("10.200.0.1"), ACL_NOSERVE);
      assert.equal(acl.lookupString("10.1.200.1"), ACL_LIMITED);
      assert.equal(acl.lookupString("10.1.3.9"), ACL_KOD);
      assert.equal(acl.lookupString("10.1.4.9"), ACL_LIMITED);
      assert.equal(acl.lookupString("10.1.2.3"), 0);
      assert.equal(acl.lookupString("11.0.0.0"), ACL_IGNORE);
    }
  });

  it("returns the configuration index of the matching rule", () => {
    const acl = parseAclRules(
      [
        { address: "2001:db8::/32", flags: ["noquery"] },
        { address: "2001:db8:1::/48", flags: ["nomrulist"] },
      ],
      [],
    );
    assert.equal(acl.matchString("2001:db8:1::5"), 1);
    assert.equal(acl.matchString("2001:db8:2::5"), 0);
    assert.equal(acl.matchString("2001:db9::"), ACL_DEFAULT_RULE);
    assert.equal(acl.flagsOf(1), ACL_NOMRULIST);
    assert.equal(acl.flagsOf(ACL_DEFAULT_RULE), 0);
    assert.deepEqual(acl.rules, [
      { index: 0, prefix: "2001:db8::/32", flags: ACL_NOQUERY },
      { index: 1, prefix: "2001:db8:1::/48", flags: ACL_NOMRULIST },
    ]);
    assert.ok(Object.isFrozen(acl.rules) && Object.isFrozen(acl.rules[0]));
  });

  it("applies IPv4 rules to IPv4-mapped IPv6 clients, and not to other IPv6", () => {
    const acl = parseAclRules([{ address: "192.0.2.0/24", flags: ["noserve"] }], []);
    assert.equal(acl.lookupString("::ffff:192.0.2.9"), ACL_NOSERVE);
    assert.equal(acl.lookupString("::FFFF:c000:0209"), ACL_NOSERVE);
    assert.equal(acl.lookup(key("192.0.2.9")), ACL_NOSERVE);
    assert.equal(acl.lookupString("::192.0.2.9"), 0); // IPv4-compatible, not mapped
    assert.equal(acl.lookupString("64:ff9b::192.0.2.9"), 0); // NAT64, not mapped
    // Keys that differ from the mapped form in one word only are not IPv4.
    assert.equal(acl.lookupString("::1:0:0:ffff:192.0.2.9"), 0);
    assert.equal(acl.lookupString("1::ffff:192.0.2.9"), 0);
    assert.equal(acl.lookupString("::fffe:192.0.2.9"), 0);
  });

  it("/0: 0.0.0.0/0 covers all of IPv4 and only IPv4; ::/0 covers everything", () => {
    const v4all = parseAclRules([{ address: "0.0.0.0/0", flags: ["kod"] }], ["ignore"]);
    assert.equal(v4all.lookupString("0.0.0.0"), ACL_KOD);
    assert.equal(v4all.lookupString("255.255.255.255"), ACL_KOD);
    assert.equal(v4all.lookupString("::fffe:ffff:ffff"), ACL_IGNORE);
    assert.equal(v4all.lookupString("::1"), ACL_IGNORE);
    const all = parseAclRules([{ address: "::/0", flags: ["kod"] }], ["ignore"]);
    for (const a of ["::", "::1", "1.2.3.4", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]) {
      assert.equal(all.lookupString(a), ACL_KOD, a);
    }
    // Both together: IPv4 clients meet the longer 0.0.0.0/0 (= ::ffff:0:0/96).
    const both = parseAclRules(
      [
        { address: "::/0", flags: ["noserve"] },
        { address: "0.0.0.0/0", flags: ["kod"] },
      ],
      ["ignore"],
    );
    assert.equal(both.lookupString("8.8.8.8"), ACL_KOD);
    assert.equal(both.lookupString("2001:db8::"), ACL_NOSERVE);
  });

  it("IPv6 rules shorter than /96 that contain the mapped range apply to IPv4 clients", () => {
    const acl = parseAclRules(
      [
        { address: "::/64", flags: ["limited"] },
        { address: "10.0.0.0/8", flags: ["kod"] },
      ],
      ["ignore"],
    );
    assert.equal(acl.lookupString("192.0.2.1"), ACL_LIMITED);
    assert.equal(acl.lookupString("10.9.9.9"), ACL_KOD);
    assert.equal(acl.lookupString("::2"), ACL_LIMITED);
    assert.equal(acl.lookupString("0:0:0:1::"), ACL_IGNORE);
  });

  it("/32 and /128 match exactly one address; odd lengths match the right bits", () => {
    const acl = parseAclRules(
      [
        { address: "198.51.100.7/32", flags: ["noserve"] },
        { address: "2001:db8::7/128", flags: ["kod"] },
        { address: "2001:db8::/127", flags: ["limited"] },
        { address: "128.0.0.0/1", flags: ["noquery"] },
        { address: "8000::/1", flags: ["nomrulist"] },
        { address: "203.0.113.128/25", flags: ["ignore"] },
      ],
      [],
    );
    assert.equal(acl.lookupString("198.51.100.7"), ACL_NOSERVE);
    assert.equal(acl.lookupString("198.51.100.6"), ACL_NOQUERY); // only 128.0.0.0/1
    assert.equal(acl.lookupString("198.51.100.8"), ACL_NOQUERY); // only 128.0.0.0/1
    assert.equal(acl.lookupString("2001:db8::7"), ACL_KOD);
    assert.equal(acl.lookupString("2001:db8::6"), 0);
    assert.equal(acl.lookupString("2001:db8::"), ACL_LIMITED);
    assert.equal(acl.lookupString("2001:db8::1"), ACL_LIMITED);
    assert.equal(acl.lookupString("2001:db8::2"), 0);
    assert.equal(acl.lookupString("200.1.1.1"), ACL_NOQUERY);
    assert.equal(acl.lookupString("127.255.255.255"), 0);
    assert.equal(acl.lookupString("ffff::"), ACL_NOMRULIST);
    assert.equal(acl.lookupString("7fff::"), 0);
    assert.equal(acl.lookupString("203.0.113.127"), ACL_NOQUERY); // only 128.0.0.0/1
    assert.equal(acl.lookupString("203.0.113.128"), ACL_IGNORE);
    assert.equal(acl.lookupString("203.0.113.255"), ACL_IGNORE);
  });

  it("accepts the scoped addresses Node reports and ignores the zone", () => {
    const acl = parseAclRules([{ address: "fe80::/10", flags: ["noserve"] }], []);
    assert.equal(acl.lookupString("fe80::1%eth0"), ACL_NOSERVE);
    assert.equal(acl.lookupString("febf::1%2"), ACL_NOSERVE);
    assert.equal(acl.lookupString("fec0::1"), 0);
  });

  it("lookupString throws ERR_ACL_BAD_ADDRESS on text that is no address", () => {
    const acl = parseAclRules([], []);
    for (const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "256.0.0.1",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "::g",
      ":::",
      "12345::",
      "1:2:3:4:5:6:7:1.2.3.4",
      "1::2:3:4:5:6:7:8",
      "example.org",
      "1.2.3.4%eth0",
    ]) {
      assert.throws(
        () => acl.lookupString(bad),
        (e: unknown) => e instanceof AclError && e.code === "ERR_ACL_BAD_ADDRESS",
        bad,
      );
    }
  });

  it("does not change when the input arrays are changed afterwards", () => {
    const flags = ["noserve"];
    const rules = [{ address: "192.0.2.0/24", flags }];
    const acl = parseAclRules(rules, []);
    flags.push("kod");
    rules[0]!.address = "0.0.0.0/0";
    assert.equal(acl.lookupString("192.0.2.1"), ACL_NOSERVE);
    assert.equal(acl.lookupString("10.0.0.1"), 0);
  });
});

describe("acl rule validation", () => {
  it("names the rule index and the reason for each bad address", () => {
    const cases: [string, string][] = [
      ["10.0.0.0/33", 'prefix length must be 0-32, got "10.0.0.0/33"'],
      ["2001:db8::/129", 'prefix length must be 0-128, got "2001:db8::/129"'],
      ["10.0.0.0/", 'prefix length must be 0-32, got "10.0.0.0/"'],
      ["10.0.0.0/08", 'prefix length must be 0-32, got "10.0.0.0/08"'],
      ["10.0.0.0/8/8", 'prefix length must be 0-32, got "10.0.0.0/8/8"'],
      ["10.0.0.0/-1", 'prefix length must be 0-32, got "10.0.0.0/-1"'],
      [
        "10.0.0.010/8",
        'not a valid IPv4 address (four decimal numbers 0-255, no leading zeros), got "10.0.0.010/8"',
      ],
      ["ntp.example.org", 'not an IPv4 or IPv6 address, got "ntp.example.org"'],
      ["", 'is empty, got ""'],
      ["fe80::/10%eth0", 'a zone ("%...") has no place in an access rule, got "fe80::/10%eth0"'],
      [
        "192.0.2.77/24",
        'host bits are set beyond /24 (write "192.0.2.0/24" for the network, "192.0.2.77" for the one host), got "192.0.2.77/24"',
      ],
      [
        "2001:db8::1/64",
        'host bits are set beyond /64 (write "2001:db8::/64" for the network, "2001:db8::1" for the one host), got "2001:db8::1/64"',
      ],
      [
        "1.2.3.4/0",
        'host bits are set beyond /0 (write "0.0.0.0/0" for the network, "1.2.3.4" for the one host), got "1.2.3.4/0"',
      ],
    ];
    for (const [address, reason] of cases) {
      const rules = [
        { address: "192.0.2.0/24", flags: [] },
        { address, flags: ["kod"] },
      ];
      assert.deepEqual(
        problemsOf(() => parseAclRules(rules, [])),
        [["acl.rule[1].address", reason]],
        address,
      );
    }
  });

  it("the message is key: reason", () => {
    assert.throws(() => parseAclRules([{ address: "10.0.0.0/33", flags: [] }], []), {
      name: "AclError",
      code: "ERR_ACL_INVALID",
      message: 'acl.rule[0].address: prefix length must be 0-32, got "10.0.0.0/33"',
      key: "acl.rule[0].address",
    });
  });

  it("rejects duplicate prefixes, however they are spelt", () => {
    const p = problemsOf(() =>
      parseAclRules(
        [
          { address: "10.0.0.0/8", flags: [] },
          { address: "2001:db8::/32", flags: [] },
          { address: "::ffff:10.0.0.0/104", flags: ["kod"] },
          { address: "2001:0DB8:0:0::/32", flags: [] },
          { address: "192.0.2.1", flags: [] },
          { address: "192.0.2.1/32", flags: [] },
          { address: "::ffff:0:0/96", flags: [] },
          { address: "0.0.0.0/0", flags: [] },
        ],
        [],
      ),
    );
    assert.deepEqual(p, [
      ["acl.rule[2].address", 'duplicate of acl.rule[0] (both are 10.0.0.0/8), got "::ffff:10.0.0.0/104"'],
      ["acl.rule[3].address", 'duplicate of acl.rule[1] (both are 2001:db8::/32), got "2001:0DB8:0:0::/32"'],
      ["acl.rule[5].address", 'duplicate of acl.rule[4] (both are 192.0.2.1/32), got "192.0.2.1/32"'],
      ["acl.rule[7].address", 'duplicate of acl.rule[6] (both are 0.0.0.0/0), got "0.0.0.0/0"'],
    ]);
  });

  it("accepts the same address with different prefix lengths", () => {
    const acl = parseAclRules(
      [
        { address: "10.0.0.0/8", flags: ["noserve"] },
        { address: "10.0.0.0/9", flags: ["kod"] },
        { address: "::/0", flags: [] },
        { address: "::/1", flags: ["limited"] },
      ],
      [],
    );
    assert.equal(acl.lookupString("10.0.0.1"), ACL_KOD);
    assert.equal(acl.lookupString("10.128.0.1"), ACL_NOSERVE);
    assert.equal(acl.lookupString("8000::"), 0);
  });

  it("rejects unknown, ntpd-only, duplicated and non-string flags", () => {
    const p = problemsOf(() =>
      parseAclRules(
        [
          { address: "10.0.0.0/8", flags: ["kod", "nomodify", "kod", "KOD"] },
          { address: "10.0.0.0/9", flags: [3 as unknown as string] },
        ],
        ["limitd"],
      ),
    );
    assert.deepEqual(p, [
      [
        "acl.default[0]",
        'unknown flag "limitd"; known flags: ignore, noserve, noquery, limited, kod, nomrulist',
      ],
      [
        "acl.rule[0].flags[1]",
        'the ntpd flag "nomodify" has no meaning here: ntpshield has no remote configuration to forbid',
      ],
      ["acl.rule[0].flags[2]", 'flag "kod" is listed twice'],
      [
        "acl.rule[0].flags[3]",
        'unknown flag "KOD"; known flags: ignore, noserve, noquery, limited, kod, nomrulist',
      ],
      ["acl.rule[1].flags[0]", "must be a flag name, got 3"],
    ]);
  });

  it("reports every problem at once", () => {
    const p = problemsOf(() =>
      parseAclRules(
        [
          { address: "10.0.0.0/33", flags: [] },
          { address: "10.0.0.0/8", flags: ["x"] },
          { address: "10.0.0.1/8", flags: [] },
        ],
        [],
      ),
    );
    assert.deepEqual(
      p.map(([k]) => k),
      ["acl.rule[0].address", "acl.rule[1].flags[0]", "acl.rule[2].address"],
    );
  });

  it(`rejects more than ${ACL_MAX_RULES} rules`, () => {
    const rules = Array.from({ length: ACL_MAX_RULES + 1 }, (_, i) => ({
      address: `10.${i >> 8}.${i & 255}.0/24`,
      flags: [],
    }));
    assert.deepEqual(
      problemsOf(() => parseAclRules(rules, [])),
      [["acl.rule", `at most ${ACL_MAX_RULES} rules, got ${ACL_MAX_RULES + 1}`]],
    );
    const acl = parseAclRules(rules.slice(0, ACL_MAX_RULES), []);
    assert.equal(acl.matchString("10.39.15.9"), 39 * 256 + 15);
  });
});

describe("acl against a naive longest-match scan", () => {
  it("agrees on random rule sets and addresses (IPv4, IPv6, mapped)", () => {
    fc.assert(
      fc.property(scenario, ({ rules, defaultFlags, addrs }) => {
        const acl = parseAclRules(inputs(rules), aclFlagNames(defaultFlags));
        for (const { w } of addrs) {
          const want = naiveMatch(rules, w);
          const k = new Uint32Array(w);
          assert.equal(acl.match(k), want);
          assert.equal(acl.lookup(k), want < 0 ? defaultFlags : rules[want]!.flags);
        }
      }),
      { numRuns: 400 },
    );
  });

  it("lookupString agrees with match on every spelling of the address", () => {
    fc.assert(
      fc.property(scenario, ({ rules, addrs }) => {
        const acl = parseAclRules(inputs(rules), []);
        for (const { w, style } of addrs) {
          const text = addrText(w, style);
          assert.equal(acl.matchString(text), naiveMatch(rules, w), text);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("rejects host bits set beyond the prefix, as the model says", () => {
    fc.assert(
      fc.property(words, fc.integer({ min: 0, max: 127 }), (w, len) => {
        const hasHostBits = toBig(maskWords(w, len)) !== toBig(w);
        const text = `${v6Text(w, 3)}/${len}`;
        let threw = false;
        try {
          parseAclRules([{ address: text, flags: [] }], []);
        } catch (e) {
          threw = e instanceof AclError && /host bits/.test(e.reason);
        }
        assert.equal(threw, hasHostBits, text);
      }),
    );
  });
});
