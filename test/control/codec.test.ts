import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  CTL_MAX_DATA,
  errorReply,
  fragmentCount,
  fragmentReply,
  lfpText,
  PARSE_BAD_VERSION,
  PARSE_IS_RESPONSE,
  PARSE_NOT_CONTROL,
  PARSE_TRUNCATED,
  parseControlRequest,
  parseLfpText,
  parseVarList,
  quoted,
  type ReplyHeader,
  replyWireLength,
  textBytes,
  VarText,
} from "../../src/control/codec.ts";
import { reassemble, request } from "./client.ts";

const H: ReplyHeader = { leap: 0, version: 2, opcode: 2, sequence: 7, status: 0x0615, associd: 0 };

describe("parseControlRequest", () => {
  test("reads what ntpq sends (captured: d6 02 00 01, eight zeros)", () => {
    const r = parseControlRequest(Uint8Array.from([0xd6, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), 12);
    assert.ok(typeof r === "object");
    assert.deepEqual(r, {
      version: 2,
      opcode: 2,
      more: false,
      sequence: 1,
      status: 0,
      associd: 0,
      offset: 0,
      count: 0,
      data: "",
    });
  });

  test("data is the count octets, padding and anything after ignored", () => {
    const req = request(2, "stratum,refid", 300, 5);
    const r = parseControlRequest(req, req.length);
    assert.ok(typeof r === "object");
    assert.equal(r.data, "stratum,refid");
    assert.equal(r.sequence, 300);
    assert.equal(r.associd, 5);
  });

  test("what gets no reply at all", () => {
    assert.equal(parseControlRequest(new Uint8Array(0), 0), PARSE_TRUNCATED);
    assert.equal(parseControlRequest(Uint8Array.from([0x17, 0, 3, 42, 0, 0, 0, 0]), 8), PARSE_NOT_CONTROL);
    assert.equal(parseControlRequest(Uint8Array.from([0xd6, 2, 0, 1]), 4), PARSE_TRUNCATED);
    const response = request(2);
    response[1] = 0x82;
    assert.equal(parseControlRequest(response, 12), PARSE_IS_RESPONSE);
    const err = request(2);
    err[1] = 0x42;
    assert.equal(parseControlRequest(err, 12), PARSE_IS_RESPONSE);
    const v0 = request(2);
    v0[0] = 0x06;
    assert.equal(parseControlRequest(v0, 12), PARSE_BAD_VERSION);
    const v5 = request(2);
    v5[0] = (5 << 3) | 6;
    assert.equal(parseControlRequest(v5, 12), PARSE_BAD_VERSION);
    const long = request(2, "abcd");
    long[11] = 200; // count beyond the datagram
    assert.equal(parseControlRequest(long, long.length), PARSE_TRUNCATED);
    // `length` rules, not the buffer's size.
    assert.equal(parseControlRequest(request(2, "abcdefgh"), 16), PARSE_TRUNCATED);
  });
});

describe("fragmentReply", () => {
  test("1000 octets: three fragments at 0, 468 and 936, M on the first two, padded", () => {
    const data = Uint8Array.from({ length: 1000 }, (_, i) => 32 + (i % 90));
    const d = fragmentReply(H, data);
    assert.deepEqual(
      d.map((x) => x.length),
      [480, 480, 76],
    );
    assert.deepEqual(
      d.map((x) => x[1]),
      [0x80 | 0x20 | 2, 0x80 | 0x20 | 2, 0x80 | 2],
    );
    assert.deepEqual(
      d.map((x) => (x[8]! << 8) | x[9]!),
      [0, 468, 936],
    );
    assert.deepEqual(
      d.map((x) => (x[10]! << 8) | x[11]!),
      [468, 468, 64],
    );
    for (const x of d) {
      assert.equal(x[0], (0 << 6) | (2 << 3) | 6);
      assert.equal((x[2]! << 8) | x[3]!, 7);
      assert.equal((x[4]! << 8) | x[5]!, 0x0615);
    }
    const r = reassemble(d);
    assert.equal(r.text, String.fromCharCode(...data));
    assert.equal(r.bytes, replyWireLength(1000));
  });

  test("an empty reply is one bare header", () => {
    const d = fragmentReply(H, new Uint8Array(0));
    assert.equal(d.length, 1);
    assert.equal(d[0]!.length, 12);
    assert.equal(replyWireLength(0), 12);
  });

  test("property: any data reassembles exactly; counts, lengths and padding follow the rules", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 32 * CTL_MAX_DATA }),
        fc.integer({ min: 0, max: 65535 }),
        (data, seq) => {
          const d = fragmentReply({ ...H, sequence: seq }, data);
          assert.equal(d.length, fragmentCount(data.length));
          const r = reassemble(d); // asserts every ntpq rule
          assert.equal(r.text, String.fromCharCode(...data));
          assert.equal(r.sequence, seq);
          assert.equal(r.bytes, replyWireLength(data.length));
        },
      ),
      { numRuns: 200 },
    );
  });

  test("errorReply: 12 octets, R and E set, the code in the status word's high octet", () => {
    const e = errorReply(H, 5);
    assert.equal(e.length, 12);
    assert.equal(e[1], 0x80 | 0x40 | 2);
    assert.equal(e[4], 5);
    assert.equal(e[5], 0);
    assert.equal((e[10]! << 8) | e[11]!, 0);
  });
});

describe("l_fp text", () => {
  test("known values", () => {
    assert.equal(lfpText(0), "0x83aa7e80.00000000"); // 1970-01-01 is 2208988800 s after 1900
    assert.equal(lfpText(0.5), "0x83aa7e80.80000000");
    assert.equal(lfpText(1.25), "0x83aa7e81.40000000");
    // Past the 2036 era rollover the seconds field wraps.
    assert.equal(lfpText(2085978496), "0x00000000.00000000");
    assert.equal(lfpText(2085978497.75), "0x00000001.c0000000");
  });

  test("parse inverts format; the same double always gives the same text", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 4e9, noNaN: true }), (s) => {
        const t = lfpText(s);
        assert.match(t, /^0x[0-9a-f]{8}\.[0-9a-f]{8}$/);
        assert.equal(lfpText(s), t);
        const p = parseLfpText(t);
        assert.ok(p);
        const ntp = Math.floor(s) + 2208988800;
        assert.equal(p[0], ntp % 2 ** 32);
        assert.ok(Math.abs(p[1] / 2 ** 32 - (s - Math.floor(s))) < 1e-6);
      }),
    );
    assert.equal(parseLfpText("0xe1234567"), undefined);
    assert.equal(parseLfpText("e1234567.00000000"), undefined);
  });
});

describe("variable lists", () => {
  test("parseVarList splits at commas outside quotes, trims, drops NULs and empties", () => {
    assert.deepEqual(parseVarList(" nonce=abc, frags=32,, addr.0=1.2.3.4:123 ,kod\0\0"), [
      { name: "nonce", value: "abc" },
      { name: "frags", value: "32" },
      { name: "addr.0", value: "1.2.3.4:123" },
      { name: "kod", value: undefined },
    ]);
    assert.deepEqual(parseVarList('a="x,y", b'), [
      { name: "a", value: '"x,y"' },
      { name: "b", value: undefined },
    ]);
    assert.deepEqual(parseVarList(""), []);
    assert.equal(parseVarList('a="open'), undefined);
  });

  test("VarText breaks lines before column 72 and never splits an item", () => {
    const v = new VarText();
    for (let i = 0; i < 30; i++) v.add(`name${i}`, String(i * 1000));
    for (const line of v.text.split("\r\n")) assert.ok(line.length <= 73, line);
    assert.equal(v.text.split(/, |,\r\n/).length, 30);
    assert.equal(v.lengthWith("x=1"), v.text.length + 3 + 3);
  });

  test("quoted drops quotes and control characters", () => {
    assert.equal(quoted('a"b\nc'), '"abc"');
    assert.deepEqual(Array.from(textBytes("ok")), [111, 107]);
  });
});
