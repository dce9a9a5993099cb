import assert from "node:assert/strict";
import { isIPv6 } from "node:net";
import { describe, test } from "node:test";
import fc from "fast-check";
import { formatIPv6, parseIPv6 } from "../../src/config/address.ts";
import { ConfigError, formatHostPort, parseHostPort } from "../../src/config/index.ts";

function bad(s: string, defaultPort?: number): ConfigError {
  try {
    parseHostPort(s, defaultPort);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.code, "ERR_CONFIG_INVALID");
    assert.ok(e.message.includes(JSON.stringify(s)), `${e.message} quotes the input`);
    return e;
  }
  assert.fail(`${JSON.stringify(s)} should be refused`);
}

describe("parseHostPort", () => {
  test("IPv4, IPv6 and names", () => {
    assert.deepEqual(parseHostPort("127.0.0.1:11123"), { host: "127.0.0.1", port: 11123, family: 4 });
    assert.deepEqual(parseHostPort("0.0.0.0:123"), { host: "0.0.0.0", port: 123, family: 4 });
    assert.deepEqual(parseHostPort("[::1]:11123"), { host: "::1", port: 11123, family: 6 });
    assert.deepEqual(parseHostPort("[::]:123"), { host: "::", port: 123, family: 6 });
    assert.deepEqual(parseHostPort("time.example.org:123"), {
      host: "time.example.org",
      port: 123,
      family: 0,
    });
  });

  test("port limits", () => {
    assert.equal(parseHostPort("1.2.3.4:1").port, 1);
    assert.equal(parseHostPort("1.2.3.4:65535").port, 65535);
    assert.match(bad("1.2.3.4:0").reason, /port must be a number from 1 to 65535/);
    bad("1.2.3.4:65536");
    bad("1.2.3.4:");
    bad("1.2.3.4:+5");
    bad("1.2.3.4:5x");
    bad("1.2.3.4:0x10");
    bad("[::1]:");
    bad("[::1]:999999");
  });

  test("the default port applies only when none is written", () => {
    assert.deepEqual(parseHostPort("192.0.2.1", 123), { host: "192.0.2.1", port: 123, family: 4 });
    assert.deepEqual(parseHostPort("[2001:db8::1]", 123), { host: "2001:db8::1", port: 123, family: 6 });
    assert.deepEqual(parseHostPort("ntp.example", 123), { host: "ntp.example", port: 123, family: 0 });
    assert.equal(parseHostPort("ntp.example:4123", 123).port, 4123);
    assert.match(bad("192.0.2.1").reason, /port is missing/);
    bad("[::1]");
  });

  test("bare IPv6: the whole text is the address, so the port must come from the default", () => {
    assert.deepEqual(parseHostPort("2001:db8::1", 123), { host: "2001:db8::1", port: 123, family: 6 });
    assert.deepEqual(parseHostPort("::1", 4), { host: "::1", port: 4, family: 6 });
    // "::1:123" is a valid address (0::1:123), not ::1 with port 123: refuse without a default.
    assert.match(bad("::1:123").reason, /\[IPv6\]:PORT/);
    bad("2001:db8::1");
  });

  test("IPv4-mapped IPv6 becomes the IPv4 address it carries", () => {
    assert.deepEqual(parseHostPort("[::ffff:192.0.2.1]:123"), { host: "192.0.2.1", port: 123, family: 4 });
    assert.deepEqual(parseHostPort("[::FFFF:c000:201]:123"), { host: "192.0.2.1", port: 123, family: 4 });
    assert.deepEqual(parseHostPort("[0:0:0:0:0:ffff:7f00:1]:5"), { host: "127.0.0.1", port: 5, family: 4 });
    assert.deepEqual(parseHostPort("::ffff:10.0.0.1", 123), { host: "10.0.0.1", port: 123, family: 4 });
    // Other embedded forms stay IPv6.
    assert.deepEqual(parseHostPort("[64:ff9b::192.0.2.1]:123"), {
      host: "64:ff9b::c000:201",
      port: 123,
      family: 6,
    });
  });

  test("IPv6 is canonicalised (RFC 5952), zone kept", () => {
    assert.equal(parseHostPort("[2001:DB8:0000:0:0:0:0:0001]:1").host, "2001:db8::1");
    assert.equal(parseHostPort("[2001:db8:0:0:1:0:0:1]:1").host, "2001:db8::1:0:0:1");
    assert.equal(parseHostPort("[2001:db8:0:1:1:1:1:1]:1").host, "2001:db8:0:1:1:1:1:1");
    assert.deepEqual(parseHostPort("[fe80::1%eth0]:123"), { host: "fe80::1%eth0", port: 123, family: 6 });
    bad("[fe80::1%]:123");
    bad("[fe80::1%a b]:123");
  });

  test("malformed brackets and addresses", () => {
    bad("[::1:123");
    bad("[::1]123");
    bad("[::1]x:123");
    bad("[1.2.3.4]:123");
    bad("[]:123");
    bad("[:::1]:123");
    bad("[1::2::3]:123");
    bad("[1:2:3:4:5:6:7:8:9]:123");
    bad("[12345::]:123");
    bad("[::1.2.3]:123");
  });

  test("IPv4 is strict", () => {
    assert.match(bad("1.2.3:123").reason, /not a valid IPv4 address/);
    bad("256.1.1.1:123");
    bad("01.2.3.4:123");
    bad("1.2.3.4.5:123");
    bad("1.2.3.400:123");
  });

  test("names follow RFC 1123 and are lower-cased", () => {
    assert.equal(parseHostPort("Time.Example.ORG.:123").host, "time.example.org");
    assert.equal(parseHostPort("a-b.c:1").host, "a-b.c");
    assert.equal(parseHostPort(`${"a".repeat(63)}.example:1`).family, 0);
    bad(`${"a".repeat(64)}.example:1`);
    bad("-a.example:1");
    bad("a-.example:1");
    bad("a..example:1");
    bad("a_b.example:1");
    bad("bad host:1");
    bad(":123");
    bad("");
    bad(" 1.2.3.4:123");
    bad(`${"a.".repeat(200)}example:1`);
  });

  test("formatHostPort inverts parseHostPort", () => {
    for (const s of ["1.2.3.4:5", "[2001:db8::1]:123", "name.example:99", "[fe80::1%eth0]:123"]) {
      assert.equal(formatHostPort(parseHostPort(s)), s);
    }
  });
});

describe("IPv6 text", () => {
  test("accepts what Node accepts and prints what WHATWG URL prints (differential)", () => {
    fc.assert(
      fc.property(fc.ipV6(), (s) => {
        const g = parseIPv6(s);
        assert.ok(g !== undefined, s);
        assert.equal(g.length, 8);
        assert.equal(formatIPv6(g), new URL(`http://[${s}]/`).hostname.slice(1, -1));
      }),
      { numRuns: 500 },
    );
  });

  test("agrees with node:net on arbitrary short strings of IPv6 characters", () => {
    const chars = fc.constantFrom(..."0123456789abcdefABCDEF:.".split(""));
    fc.assert(
      fc.property(fc.string({ unit: chars, maxLength: 24 }), (s) => {
        assert.equal(parseIPv6(s) !== undefined, isIPv6(s), s);
      }),
      { numRuns: 3000 },
    );
  });
});
