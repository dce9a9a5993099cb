import assert from "node:assert/strict";
import { isIP } from "node:net";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  addressKey,
  clientPrefixBits,
  formatAddressKey,
  formatPrefixKey,
  hashKey,
  isIPv4Key,
  KEY_BITS,
  KEY_WORDS,
  maskIPv6Key,
  maskKey,
  parseAddressKey,
  parsePrefixKey,
  prefixLengthOf,
} from "../../src/defence/address-key.ts";

/** A deliberately simple reference parser: split-based, allocating, obviously right. */
function naiveKey(text: string): number[] | undefined {
  const s = text.includes("%") ? text.slice(0, text.indexOf("%")) : text;
  const v4 = (t: string): number[] | undefined => {
    const parts = t.split(".");
    if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
      return undefined;
    }
    return parts.map(Number);
  };
  if (!s.includes(":")) {
    const b = v4(s);
    return b && [0, 0, 0xffff, ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0];
  }
  let body = s;
  let tail: number[] = [];
  const last = body.lastIndexOf(":");
  if (body.slice(last + 1).includes(".")) {
    const b = v4(body.slice(last + 1));
    if (!b) return undefined;
    tail = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
    body = body.slice(0, last + 1);
    if (body.endsWith(":") && !body.endsWith("::")) body = body.slice(0, -1);
  }
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (h: string) => (h === "" ? [] : h.split(":"));
  const hex = (g: string) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? Number.parseInt(g, 16) : Number.NaN);
  const head = groupsOf(halves[0]!).map(hex);
  const rest = halves.length === 2 ? groupsOf(halves[1]!).map(hex) : [];
  const all = [...head, ...rest];
  if (all.some(Number.isNaN)) return undefined;
  const filled = halves.length === 2 ? 8 - head.length - rest.length - tail.length : 0;
  if (halves.length === 2 && filled < 1) return undefined;
  const g = [...head, ...new Array<number>(filled).fill(0), ...rest, ...tail];
  if (g.length !== 8) return undefined;
  return [0, 2, 4, 6].map((i) => ((g[i]! << 16) | g[i + 1]!) >>> 0);
}

function key(text: string): number[] | undefined {
  const out = new Uint32Array(KEY_WORDS);
  return parseAddressKey(text, out) ? [...out] : undefined;
}

/** RFC 5952 text as the WHATWG URL parser writes it (it serialises IPv6 hosts canonically). */
function urlCanonical(text: string): string {
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

describe("parseAddressKey", () => {
  test("IPv4 and IPv4-mapped IPv6 give the same key", () => {
    const expected = [0, 0, 0xffff, 0xc0000201];
    assert.deepEqual(key("192.0.2.1"), expected);
    assert.deepEqual(key("::ffff:192.0.2.1"), expected);
    assert.deepEqual(key("::FFFF:192.0.2.1"), expected);
    assert.deepEqual(key("::ffff:c000:201"), expected);
    assert.deepEqual(key("0:0:0:0:0:ffff:192.0.2.1"), expected);
    assert.deepEqual(key("255.255.255.255"), [0, 0, 0xffff, 0xffffffff]);
    assert.deepEqual(key("0.0.0.0"), [0, 0, 0xffff, 0]);
  });

  test("IPv6 forms", () => {
    assert.deepEqual(key("::"), [0, 0, 0, 0]);
    assert.deepEqual(key("::1"), [0, 0, 0, 1]);
    assert.deepEqual(key("2001:db8::1"), [0x20010db8, 0, 0, 1]);
    assert.deepEqual(key("2001:DB8:0:0:0:0:0:1"), [0x20010db8, 0, 0, 1]);
    assert.deepEqual(key("1:2:3:4:5:6:7::"), [0x10002, 0x30004, 0x50006, 0x70000]);
    assert.deepEqual(key("1::2:3:4:5:6:7"), [0x10000, 0x20003, 0x40005, 0x60007]);
    assert.deepEqual(key("64:ff9b::192.0.2.1"), [0x0064ff9b, 0, 0, 0xc0000201]);
    assert.deepEqual(key("fe80::1%eth0"), key("fe80::1"), "the zone id is not part of the key");
  });

  test("refuses what is not an address", () => {
    for (const s of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "256.1.1.1",
      "1.2.3.4 ",
      "1.2.3.4%eth0",
      ":",
      ":::",
      "1:::2",
      "1::2::3",
      ":1::2",
      "1::2:",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7:8::",
      "1:2:3:4:5:6:7",
      "12345::1",
      "::ffff:1.2.3.4.5",
      "::1.2.3.4:5",
      "1:2:3:4:5:6:7:1.2.3.4",
      "fe80::1%",
      "fe80::1%e/0",
      "g::1",
      "example.org",
    ]) {
      assert.equal(key(s), undefined, JSON.stringify(s));
      assert.equal(isIP(s), 0, `node:net agrees that ${JSON.stringify(s)} is no address`);
    }
  });

  test("IPv4: same key as the reference parser, mapped or not (property)", () => {
    fc.assert(
      fc.property(fc.ipV4(), (s) => {
        const expected = naiveKey(s);
        assert.ok(expected);
        assert.deepEqual(key(s), expected);
        assert.deepEqual(key(`::ffff:${s}`), expected);
      }),
      { numRuns: 2000 },
    );
  });

  test("IPv6: same key as the reference parser (property)", () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.boolean(), (s, upper) => {
        const text = upper ? s.toUpperCase() : s;
        const expected = naiveKey(text);
        assert.ok(expected, text);
        assert.deepEqual(key(text), expected, text);
      }),
      { numRuns: 3000 },
    );
  });

  test("accepts exactly what node:net accepts (property over mutated addresses)", () => {
    const alphabet = fc.constantFrom(..."0123456789abcdefABCDEF:.%gx-".split(""));
    const noise = fc.array(alphabet, { maxLength: 45 }).map((a) => a.join(""));
    const mutated = fc
      .tuple(
        fc.oneof(fc.ipV6(), fc.ipV4()),
        fc.nat(60),
        alphabet,
        fc.constantFrom("insert", "replace", "delete"),
      )
      .map(([s, at, c, op]) => {
        const i = at % (s.length + 1);
        if (op === "insert") return s.slice(0, i) + c + s.slice(i);
        if (op === "replace") return s.slice(0, i) + c + s.slice(i + 1);
        return s.slice(0, i) + s.slice(i + 1);
      });
    fc.assert(
      fc.property(fc.oneof(noise, mutated), (s) => {
        const ours = key(s) !== undefined;
        assert.equal(ours, isIP(s) !== 0, JSON.stringify(s));
        if (ours) assert.deepEqual(key(s), naiveKey(s), JSON.stringify(s));
      }),
      { numRuns: 10000 },
    );
  });

  test("writes into the caller's array and nothing else", () => {
    const out = new Uint32Array(KEY_WORDS + 2).fill(7);
    assert.ok(parseAddressKey("2001:db8::1", out.subarray(1, 1 + KEY_WORDS)));
    assert.deepEqual([...out], [7, 0x20010db8, 0, 0, 1, 7]);
  });
});

describe("formatAddressKey", () => {
  test("examples", () => {
    assert.equal(formatAddressKey(addressKey("::ffff:10.0.0.1")!), "10.0.0.1");
    assert.equal(
      formatAddressKey(addressKey("2001:0DB8:0000:0000:0001:0000:0000:0001")!),
      "2001:db8::1:0:0:1",
    );
    assert.equal(formatAddressKey(addressKey("2001:db8:0:1:1:1:1:1")!), "2001:db8:0:1:1:1:1:1");
    assert.equal(formatAddressKey(addressKey("::")!), "::");
    assert.equal(formatAddressKey(addressKey("::1")!), "::1");
    assert.equal(formatAddressKey(addressKey("1::")!), "1::");
    const words = [9, 9, 0, 0, 0, 0, 0, 1];
    assert.equal(formatAddressKey(words, 4), "::1", "reads at the offset");
  });

  test("IPv6: RFC 5952 text, the same as the WHATWG URL serialiser, and it parses back (property)", () => {
    fc.assert(
      fc.property(fc.ipV6(), (s) => {
        const k = addressKey(s)!;
        const text = formatAddressKey(k);
        assert.deepEqual(addressKey(text), k);
        if (!isIPv4Key(k)) assert.equal(text, urlCanonical(s));
      }),
      { numRuns: 3000 },
    );
  });

  test("IPv4 round trip (property)", () => {
    fc.assert(
      fc.property(fc.ipV4(), (s) => {
        assert.equal(formatAddressKey(addressKey(s)!), s);
      }),
    );
  });
});

describe("maskIPv6Key", () => {
  test("keeps the prefix of IPv6 keys, leaves IPv4 keys alone", () => {
    const k = addressKey("2001:db8:1234:5678:9abc:def0:1234:5678")!;
    maskIPv6Key(k, 64);
    assert.equal(formatAddressKey(k), "2001:db8:1234:5678::");
    const k2 = addressKey("2001:db8:1234:5678::1")!;
    maskIPv6Key(k2, 44);
    assert.equal(formatAddressKey(k2), "2001:db8:1230::");
    const k3 = addressKey("2001:db8::1")!;
    maskIPv6Key(k3, 128);
    assert.equal(formatAddressKey(k3), "2001:db8::1");
    const v4 = addressKey("192.0.2.77")!;
    maskIPv6Key(v4, 64);
    assert.equal(formatAddressKey(v4), "192.0.2.77");
  });
});

describe("client prefixes (maskKey, clientPrefixBits, formatPrefixKey, parsePrefixKey)", () => {
  /** The client key of `address` under the given prefix lengths, as text. */
  function client(address: string, ipv4Prefix = 32, ipv6Prefix = 64): string {
    const k = addressKey(address)!;
    const bits = clientPrefixBits(k, ipv4Prefix, ipv6Prefix);
    const out = new Uint32Array(KEY_WORDS);
    maskKey(k, bits, out);
    return formatPrefixKey(out, bits);
  }

  test("defaults: IPv6 by its /64, IPv4 by its address", () => {
    assert.equal(client("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
    assert.equal(client("2001:db8:1:2::1"), "2001:db8:1:2::/64");
    assert.equal(client("2001:db8:1:3::1"), "2001:db8:1:3::/64");
    assert.equal(client("192.0.2.77"), "192.0.2.77");
    assert.equal(client("::1"), "::/64");
  });

  test("an IPv4-mapped address takes the IPv4 length, never the IPv6 one", () => {
    assert.equal(client("::ffff:192.0.2.77"), "192.0.2.77");
    assert.equal(client("::ffff:192.0.2.77", 32, 16), "192.0.2.77", "a short IPv6 prefix leaves IPv4 alone");
    assert.equal(client("::ffff:192.0.2.77", 28), "192.0.2.64/28");
    assert.equal(client("192.0.2.77", 28, 128), "192.0.2.64/28");
    assert.equal(clientPrefixBits(addressKey("192.0.2.1")!, 24, 64), 96 + 24);
    assert.equal(clientPrefixBits(addressKey("2001:db8::1")!, 24, 64), 64);
  });

  test("configurable lengths: /56, /28, /8, /128, /16", () => {
    assert.equal(client("2001:db8:1:2ff::9", 32, 56), "2001:db8:1:200::/56");
    assert.equal(client("2001:db8:1:2::9", 32, 128), "2001:db8:1:2::9", "128 = the address");
    assert.equal(client("2001:db8:1:2::9", 32, 16), "2001::/16");
    assert.equal(client("203.0.113.200", 28), "203.0.113.192/28");
    assert.equal(client("203.0.113.200", 8), "203.0.0.0/8");
  });

  test("masking works in place and into another array, on every word boundary (property)", () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.integer({ min: 0, max: KEY_BITS }), (text, bits) => {
        const k = addressKey(text)!;
        const out = new Uint32Array(KEY_WORDS);
        maskKey(k, bits, out);
        const naive = [...k].map((w, i) => {
          const keep = Math.max(0, Math.min(32, bits - 32 * i));
          return keep === 0 ? 0 : (w & (0xffffffff << (32 - keep))) >>> 0;
        });
        assert.deepEqual([...out], naive);
        maskKey(k, bits, k);
        assert.deepEqual([...k], naive);
      }),
    );
  });

  test("a prefix's text parses back to its key and length; host bits and bad lengths are refused", () => {
    const k = new Uint32Array(KEY_WORDS);
    assert.equal(parsePrefixKey("2001:db8:1:2::/64", k), 64);
    assert.equal(formatPrefixKey(k, 64), "2001:db8:1:2::/64");
    assert.equal(parsePrefixKey("192.0.2.64/28", k), 124);
    assert.equal(prefixLengthOf(k, 124), 28);
    assert.equal(formatPrefixKey(k, 124), "192.0.2.64/28");
    assert.equal(parsePrefixKey("192.0.2.7", k), KEY_BITS, "an address is a prefix of 128 bits");
    assert.equal(parsePrefixKey("192.0.2.7/32", k), KEY_BITS);
    assert.equal(formatPrefixKey(k, KEY_BITS), "192.0.2.7");
    assert.equal(prefixLengthOf(k, KEY_BITS), 32);
    assert.equal(prefixLengthOf(addressKey("2001:db8::1")!, KEY_BITS), 128);
    for (const bad of [
      "2001:db8:1:2::1/64",
      "192.0.2.65/28",
      "192.0.2.0/33",
      "2001:db8::/129",
      "2001:db8::/064",
      "x/8",
      "192.0.2.0/",
      "fe80::%1/64",
    ]) {
      assert.equal(parsePrefixKey(bad, k), -1, bad);
    }
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: 0, max: 128 }), (text, len) => {
        const key = addressKey(text)!;
        const bits = isIPv4Key(key) ? 96 + (len % 33) : len;
        maskKey(key, bits, key);
        const back = new Uint32Array(KEY_WORDS);
        const shown = formatPrefixKey(key, bits);
        const parsed = parsePrefixKey(shown, back);
        assert.equal(parsed, bits, shown);
        assert.deepEqual(back, key, shown);
      }),
    );
  });
});

describe("hashKey", () => {
  test("depends on the seed and spreads sequential addresses evenly", () => {
    const k = addressKey("192.0.2.1")!;
    assert.equal(hashKey(k, 1), hashKey(k, 1));
    assert.notEqual(hashKey(k, 1), hashKey(k, 2));
    const buckets = new Uint32Array(1024);
    const a = new Uint32Array(KEY_WORDS);
    const n = 65536;
    for (let i = 0; i < n; i++) {
      parseAddressKey(`10.${(i >> 8) & 255}.${i & 255}.1`, a);
      buckets[hashKey(a, 12345) & 1023]!++;
    }
    const mean = n / 1024;
    const max = Math.max(...buckets);
    const min = Math.min(...buckets);
    // A uniform hash gives ~64 +- 8 per bucket; allow a wide margin, but catch a hash that clumps.
    assert.ok(max < mean * 1.6 && min > mean * 0.4, `bucket loads ${min}..${max}, mean ${mean}`);
  });
});
