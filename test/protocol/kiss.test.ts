import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  isKissOfDeath,
  KISS_CODES,
  KISS_DENY,
  KISS_INIT,
  KISS_NTSN,
  KISS_RATE,
  KISS_RSTR,
  KISS_STEP,
  kissCodeInfo,
  kissCodeToUint32,
  NtpValueError,
  parseIPv6,
  refIdFromAddress,
  refIdFromIPv4,
  refIdFromIPv6,
  refIdText,
  uint32ToKissCode,
} from "../../src/protocol/index.ts";

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof NtpValueError && e.code === code);
}

describe("kiss codes (RFC 5905 §7.4, RFC 8915 §5.7)", () => {
  it("has the fifteen codes, frozen, with the binding actions", () => {
    assert.deepEqual(
      KISS_CODES.map((k) => k.code),
      [
        "ACST",
        "AUTH",
        "AUTO",
        "BCST",
        "CRYP",
        "DENY",
        "DROP",
        "INIT",
        "MCST",
        "NKEY",
        "NTSN",
        "RATE",
        "RMOT",
        "RSTR",
        "STEP",
      ],
    );
    assert.equal(Object.isFrozen(KISS_CODES), true);
    for (const k of KISS_CODES) {
      assert.equal(Object.isFrozen(k), true);
      assert.ok(k.meaning.length > 10, k.code);
      const expected =
        k.code === "DENY" || k.code === "RSTR" ? "stop" : k.code === "RATE" ? "reduce" : "info";
      assert.equal(k.action, expected, k.code);
      assert.equal(kissCodeInfo(k.code), k);
      assert.equal(uint32ToKissCode(kissCodeToUint32(k.code)), k.code);
    }
    assert.equal(kissCodeInfo("XXXX"), undefined);
  });

  it("has the ASCII octets big-endian as the hot-path numbers", () => {
    assert.equal(KISS_RATE, 0x52415445);
    assert.equal(kissCodeToUint32("RATE"), 0x52415445);
    assert.equal(Buffer.from("RATE", "ascii").readUInt32BE(0), KISS_RATE);
    assert.equal(Buffer.from("DENY", "ascii").readUInt32BE(0), KISS_DENY);
    assert.equal(Buffer.from("RSTR", "ascii").readUInt32BE(0), KISS_RSTR);
    assert.equal(Buffer.from("NTSN", "ascii").readUInt32BE(0), KISS_NTSN);
    assert.equal(Buffer.from("INIT", "ascii").readUInt32BE(0), KISS_INIT);
    assert.equal(Buffer.from("STEP", "ascii").readUInt32BE(0), KISS_STEP);
    assert.equal(uint32ToKissCode(KISS_DENY), "DENY");
  });

  it("pads short refids with NULs and strips them back", () => {
    assert.equal(kissCodeToUint32("GPS"), 0x47505300);
    assert.equal(kissCodeToUint32("X"), 0x58000000);
    assert.equal(uint32ToKissCode(0x47505300), "GPS");
    assert.equal(uint32ToKissCode(0), "");
    assert.equal(kissCodeToUint32("A B "), 0x41204220, "spaces are kept, not stripped");
  });

  it("round-trips any 1-4 printable ASCII characters", () => {
    const printable = fc.integer({ min: 0x20, max: 0x7e }).filter((c) => c !== 0x5c);
    fc.assert(
      fc.property(fc.array(printable, { minLength: 1, maxLength: 4 }), (codes) => {
        const s = String.fromCharCode(...codes);
        const n = kissCodeToUint32(s);
        assert.ok(Number.isInteger(n) && n >= 0 && n <= 0xffffffff);
        assert.equal(uint32ToKissCode(n), s);
      }),
    );
  });

  it("escapes octets a terminal should not see, for any uint32", () => {
    assert.equal(uint32ToKissCode(0x41000042), "A\\x00\\x00B");
    assert.equal(uint32ToKissCode(0x1b5b3200), "\\x1b[2");
    assert.equal(uint32ToKissCode(0x5c000000), "\\x5c", "a backslash is escaped so escapes are unambiguous");
    assert.equal(uint32ToKissCode(0xff414141), "\\xffAAA");
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        const s = uint32ToKissCode(n);
        assert.match(s, /^[\x20-\x7e]*$/);
        assert.ok(!s.endsWith("\\x00"));
      }),
    );
  });

  it("refuses codes that are not 1-4 printable ASCII characters", () => {
    for (const bad of ["", "TOOLONG", "ABCDE", "é", "\n", "AB\u0000", "\u{1F600}"]) {
      throwsCode(() => kissCodeToUint32(bad), "ERR_NTP_INVALID_KISS_CODE");
    }
  });

  it("calls stratum 0 a kiss-o'-death", () => {
    assert.equal(isKissOfDeath(0), true);
    assert.equal(isKissOfDeath(1), false);
    assert.equal(isKissOfDeath(16), false);
  });
});

describe("refids (RFC 5905 §7.3)", () => {
  it("takes an IPv4 address as is", () => {
    assert.equal(refIdFromIPv4("192.0.2.1"), 0xc0000201);
    assert.equal(refIdFromIPv4("0.0.0.0"), 0);
    assert.equal(refIdFromIPv4("255.255.255.255"), 0xffffffff);
    assert.equal(refIdFromIPv4("10.20.30.40"), 0x0a141e28);
  });

  it("refuses what is not a dotted quad", () => {
    for (const bad of [
      "256.0.0.1",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "1.2.3.04",
      "",
      "a.b.c.d",
      " 1.2.3.4",
      "1.2.3.4 ",
      "1..3.4",
      "-1.2.3.4",
      "::1",
    ]) {
      throwsCode(() => refIdFromIPv4(bad), "ERR_NTP_INVALID_ADDRESS");
    }
  });

  it("hashes an IPv6 address with MD5, first four octets (vectors from Python hashlib + inet_pton)", () => {
    assert.equal(refIdFromIPv6("::1"), 0xcf404dc8);
    assert.equal(refIdFromIPv6("2001:db8::1"), 0x39ab9b37);
    assert.equal(refIdFromIPv6("fe80::1"), 0x89e5301f);
    assert.equal(refIdFromIPv6("2001:db8:0:1:2:3:4:5"), 0x445aecc9);
    assert.equal(refIdFromIPv6("::ffff:192.0.2.1"), 0x3ad457db, "refIdFromIPv6 hashes even a mapped address");
  });

  it("gives every spelling of one IPv6 address the same refid", () => {
    for (const same of [
      "2001:0db8:0000:0000:0000:0000:0000:0001",
      "2001:DB8::1",
      "2001:db8:0::0:1",
      "2001:db8::0.0.0.1",
      "2001:db8::1%eth0",
    ]) {
      assert.equal(refIdFromIPv6(same), 0x39ab9b37, same);
    }
  });

  it("refuses what is not IPv6", () => {
    for (const bad of [
      "",
      ":::",
      "1::2::3",
      "2001:db8",
      "12345::",
      "g::1",
      "1:2:3:4:5:6:7:8:9",
      "1::2:3:4:5:6:7:8",
      "::1.2.3.256",
      "1.2.3.4::",
      "::1.2.3.4:5",
      ":1::",
      "1:",
      "%eth0",
      "192.0.2.1",
      "[::1]",
    ]) {
      assert.equal(parseIPv6(bad), null, bad);
      throwsCode(() => refIdFromIPv6(bad), "ERR_NTP_INVALID_ADDRESS");
    }
  });

  it("parses whatever the WHATWG URL parser prints for random addresses back to the same octets", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 8 }),
        (bytes, zStart, zLen) => {
          // zero a run so the canonical form exercises "::" in every position
          for (let i = zStart; i < Math.min(8, zStart + zLen); i++) bytes[2 * i] = bytes[2 * i + 1] = 0;
          const words: string[] = [];
          for (let i = 0; i < 8; i++) words.push(((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16));
          const full = words.join(":");
          const canonical = new URL(`http://[${full}]/`).hostname.slice(1, -1);
          assert.deepEqual(parseIPv6(full), bytes);
          assert.deepEqual(parseIPv6(canonical), bytes, canonical);
          const v4tail = `${words.slice(0, 6).join(":")}:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
          assert.deepEqual(parseIPv6(v4tail), bytes, v4tail);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("refIdFromAddress picks the family, and treats IPv4-mapped IPv6 as IPv4", () => {
    assert.equal(refIdFromAddress("192.0.2.1"), 0xc0000201);
    assert.equal(refIdFromAddress("::ffff:192.0.2.1"), 0xc0000201);
    assert.equal(refIdFromAddress("::FFFF:c000:0201"), 0xc0000201);
    assert.equal(refIdFromAddress("::1"), 0xcf404dc8);
    assert.equal(
      refIdFromAddress("::fffe:192.0.2.1"),
      refIdFromIPv6("::fffe:192.0.2.1"),
      "not mapped: hashed",
    );
    throwsCode(() => refIdFromAddress("example.org"), "ERR_NTP_INVALID_ADDRESS");
  });

  it("displays a refid as text at stratum 0, 1 and 16 and as a dotted quad at 2-15", () => {
    assert.equal(refIdText(KISS_RATE, 0), "RATE");
    assert.equal(refIdText(0x47505300, 1), "GPS");
    assert.equal(refIdText(0x47505300, 2), "71.80.83.0");
    assert.equal(refIdText(0xc0000201, 3), "192.0.2.1");
    assert.equal(refIdText(0x494e4954, 16), "INIT");
    assert.equal(refIdText(0xc0000201, 16), "0xc0000201", "not text: shown in hex");
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 2, max: 15 }), (n, stratum) => {
        assert.equal(refIdFromIPv4(refIdText(n, stratum)), n);
      }),
    );
  });
});
