import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  checkPacket,
  DECODE_BAD_EXTENSION_LENGTH,
  DECODE_BAD_LENGTH,
  DECODE_BAD_MAC_LENGTH,
  DECODE_BAD_VERSION,
  DECODE_OK,
  DECODE_TOO_LONG,
  DECODE_TOO_SHORT,
  decodeErrorName,
  decodeErrorNumber,
  decodePacket,
  type ExtensionField,
  encodePacket,
  encodePacketInto,
  makeExtensionField,
  NTP_MAX_PACKET_LENGTH,
  NtpDecodeError,
  type NtpPacket,
  NtpValueError,
} from "../../src/protocol/index.ts";

// ---- helpers -------------------------------------------------------------------------------------------

/** A header with the given first octet and every other octet distinct, so misplaced fields show. */
function header(liVnMode: number): Uint8Array {
  const h = new Uint8Array(48);
  for (let i = 1; i < 48; i++) h[i] = i;
  h[0] = liVnMode;
  return h;
}

function ef(type: number, fieldLength: number, lengthField = fieldLength): Uint8Array {
  const b = new Uint8Array(fieldLength);
  b[0] = type >> 8;
  b[1] = type & 0xff;
  b[2] = lengthField >> 8;
  b[3] = lengthField & 0xff;
  for (let i = 4; i < fieldLength; i++) b[i] = (i * 7) & 0xff;
  return b;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

const VN4_CLIENT = (4 << 3) | 3;
const VN3_CLIENT = (3 << 3) | 3;

function base(over: Partial<NtpPacket> = {}): NtpPacket {
  return {
    leap: 0,
    version: 4,
    mode: 3,
    stratum: 0,
    poll: 6,
    precision: -20,
    rootDelay: 0,
    rootDispersion: 0,
    refId: 0,
    referenceTimestamp: { seconds: 0, fraction: 0 },
    originTimestamp: { seconds: 0, fraction: 0 },
    receiveTimestamp: { seconds: 0, fraction: 0 },
    transmitTimestamp: { seconds: 0xeb0e5f70, fraction: 0x12345678 },
    extensions: [],
    mac: null,
    ...over,
  };
}

/**
 * Reference model, written apart from checkPacket and in another shape: RFC 5906 §10's parser as a
 * recursion over what is left, reading lengths through a DataView.
 */
function referenceCheck(bytes: Uint8Array): number {
  const n = bytes.length;
  if (n < 48) return DECODE_TOO_SHORT;
  if (n > 1096) return DECODE_TOO_LONG;
  const version = Math.floor(bytes[0]! / 8) % 8;
  if (![1, 2, 3, 4].includes(version)) return DECODE_BAD_VERSION;
  if (n % 4 !== 0) return DECODE_BAD_LENGTH;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const macOk = (left: number) => [0, 4, 20, 24].includes(left);
  const walk = (at: number): number => {
    const left = n - at;
    if (version !== 4 || left <= 24) return macOk(left) ? DECODE_OK : DECODE_BAD_MAC_LENGTH;
    const len = view.getUint16(at + 2);
    if (len < 16 || len % 4 !== 0 || len > left) return DECODE_BAD_EXTENSION_LENGTH;
    return walk(at + len);
  };
  return walk(48);
}

// ---- arbitraries ---------------------------------------------------------------------------------------

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const ts = fc.record({ seconds: u32, fraction: u32 }, { noNullPrototype: true });
/** An extension field of 16..16+4*maxExtra octets. */
const extArb = (maxExtraWords: number) =>
  fc
    .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: maxExtraWords }))
    .chain(([type, words]) =>
      fc
        .uint8Array({ minLength: 12 + 4 * words, maxLength: 12 + 4 * words })
        .map((value): ExtensionField => ({ type, value })),
    );
const macArb = fc.option(
  fc.record(
    {
      keyId: u32,
      digest: fc.constantFrom(0, 16, 20).chain((len) => fc.uint8Array({ minLength: len, maxLength: len })),
    },
    { noNullPrototype: true },
  ),
  { nil: null },
);

/** Any packet encodePacket must accept: the last extension field lengthened when it would pass for a MAC. */
const validPacket: fc.Arbitrary<NtpPacket> = fc
  .record(
    {
      leap: fc.integer({ min: 0, max: 3 }),
      version: fc.integer({ min: 1, max: 4 }),
      mode: fc.integer({ min: 0, max: 7 }),
      stratum: fc.integer({ min: 0, max: 255 }),
      poll: fc.integer({ min: -128, max: 127 }),
      precision: fc.integer({ min: -128, max: 127 }),
      rootDelay: u32,
      rootDispersion: u32,
      refId: u32,
      referenceTimestamp: ts,
      originTimestamp: ts,
      receiveTimestamp: ts,
      transmitTimestamp: ts,
      extensions: fc.array(extArb(30), { maxLength: 5 }),
      mac: macArb,
    },
    { noNullPrototype: true },
  )
  .map((p) => {
    if (p.version !== 4) return { ...p, extensions: [] };
    const last = p.extensions[p.extensions.length - 1];
    const macLen = p.mac === null ? 0 : 4 + p.mac.digest.length;
    if (last === undefined || 4 + last.value.length + macLen > 24) return p;
    const value = new Uint8Array((macLen === 4 ? 24 : 28) - 4);
    value.set(last.value.subarray(0, value.length));
    return { ...p, extensions: [...p.extensions.slice(0, -1), { type: last.type, value }] };
  });

/** Byte strings near the edge of validity: headers of any version, fields with right and wrong lengths. */
const nearValidBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 160 }),
  fc
    .tuple(
      fc.integer({ min: 0, max: 255 }),
      fc.array(
        fc.tuple(
          fc.integer({ min: 0, max: 15 }).map((w) => 16 + 4 * w - (w === 15 ? 2 : 0)),
          fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 0xffff })),
        ),
        { maxLength: 4 },
      ),
      fc.constantFrom(0, 4, 8, 12, 16, 20, 24, 28, 1, 2, 3),
    )
    .map(([first, fields, macLen]) => {
      const parts = [header(first)];
      for (const [len, lengthField] of fields)
        parts.push(ef(0x0104, len, lengthField < 0 ? len : lengthField));
      parts.push(new Uint8Array(macLen).fill(0xee));
      return cat(...parts);
    }),
  validPacket.map((p) => new Uint8Array(encodePacket(p))),
  validPacket.chain((p) =>
    fc
      .tuple(fc.nat(2000), fc.integer({ min: 0, max: 255 }), fc.integer({ min: -6, max: 6 }))
      .map(([at, octet, grow]) => {
        const b = encodePacket(p);
        const out = new Uint8Array(Math.max(0, b.length + grow));
        out.set(b.subarray(0, out.length));
        if (out.length > 0) out[at % out.length] = octet;
        return out;
      }),
  ),
);

// ---- tests ---------------------------------------------------------------------------------------------

describe("decodePacket: known octets", () => {
  it("reads an SNTP client request", () => {
    const b = new Uint8Array(48);
    b[0] = 0x23; // LI 0, VN 4, mode 3
    b.set([0xeb, 0x0e, 0x5f, 0x70, 0x80, 0, 0, 0], 40);
    const p = decodePacket(b);
    assert.equal(p.leap, 0);
    assert.equal(p.version, 4);
    assert.equal(p.mode, 3);
    assert.deepEqual(p.transmitTimestamp, { seconds: 0xeb0e5f70, fraction: 0x80000000 });
    assert.deepEqual(p.extensions, []);
    assert.equal(p.mac, null);
  });

  it("reads every header field from its offset, poll and precision signed", () => {
    const b = header((3 << 6) | (2 << 3) | 4);
    b[2] = 0xfa; // poll -6
    b[3] = 0xec; // precision -20
    const p = decodePacket(b);
    assert.deepEqual(
      {
        leap: p.leap,
        version: p.version,
        mode: p.mode,
        stratum: p.stratum,
        poll: p.poll,
        precision: p.precision,
      },
      { leap: 3, version: 2, mode: 4, stratum: 1, poll: -6, precision: -20 },
    );
    assert.equal(p.rootDelay, 0x04050607);
    assert.equal(p.rootDispersion, 0x08090a0b);
    assert.equal(p.refId, 0x0c0d0e0f);
    assert.deepEqual(p.referenceTimestamp, { seconds: 0x10111213, fraction: 0x14151617 });
    assert.deepEqual(p.originTimestamp, { seconds: 0x18191a1b, fraction: 0x1c1d1e1f });
    assert.deepEqual(p.receiveTimestamp, { seconds: 0x20212223, fraction: 0x24252627 });
    assert.deepEqual(p.transmitTimestamp, { seconds: 0x28292a2b, fraction: 0x2c2d2e2f });
    assert.deepEqual(Buffer.from(encodePacket(p)), Buffer.from(b), "and encodes back to the same octets");
  });

  it("reads extension fields and a MAC, copying them out of the buffer", () => {
    const mac = new Uint8Array(20).fill(0xaa);
    mac.set([0, 0, 0, 42], 0);
    const b = Buffer.from(cat(header(VN4_CLIENT), ef(0x0104, 36), ef(0x0204, 16), mac));
    const p = decodePacket(b);
    assert.deepEqual(
      p.extensions.map((e) => [e.type, e.value.length]),
      [
        [0x0104, 32],
        [0x0204, 12],
      ],
    );
    assert.equal(p.mac?.keyId, 42);
    assert.deepEqual(p.mac?.digest, new Uint8Array(16).fill(0xaa));
    assert.equal(
      Object.getPrototypeOf(p.extensions[0]!.value),
      Uint8Array.prototype,
      "a Uint8Array, not a Buffer view",
    );
    b.fill(0);
    assert.equal(p.mac?.digest[0], 0xaa, "digest survives reuse of the receive buffer");
    assert.equal(p.extensions[0]!.value[1], 7 * 5);
  });

  it("reads a crypto-NAK as a MAC with an empty digest", () => {
    const p = decodePacket(cat(header(VN4_CLIENT), new Uint8Array(4)));
    assert.deepEqual(p.mac, { keyId: 0, digest: new Uint8Array(0) });
  });

  it("accepts NTPv1 mode 0 (an NTPv1 client) and versions 1-4", () => {
    assert.equal(decodePacket(header(1 << 3)).mode, 0);
    for (let v = 1; v <= 4; v++) assert.equal(checkPacket(header((v << 3) | 3), 48), DECODE_OK, `v${v}`);
  });
});

describe("checkPacket: one case per rule", () => {
  const cases: [string, Uint8Array, number][] = [
    ["empty", new Uint8Array(0), DECODE_TOO_SHORT],
    ["47 octets", header(VN4_CLIENT).subarray(0, 47), DECODE_TOO_SHORT],
    ["version 0", header(3), DECODE_BAD_VERSION],
    ["version 5", header((5 << 3) | 3), DECODE_BAD_VERSION],
    ["version 7", header((7 << 3) | 3), DECODE_BAD_VERSION],
    ["49 octets", cat(header(VN4_CLIENT), new Uint8Array(1)), DECODE_BAD_LENGTH],
    ["51 octets", cat(header(VN3_CLIENT), new Uint8Array(3)), DECODE_BAD_LENGTH],
    ["v4 + crypto-NAK", cat(header(VN4_CLIENT), new Uint8Array(4)), DECODE_OK],
    ["v4 + 8", cat(header(VN4_CLIENT), new Uint8Array(8)), DECODE_BAD_MAC_LENGTH],
    ["v4 + 12", cat(header(VN4_CLIENT), new Uint8Array(12)), DECODE_BAD_MAC_LENGTH],
    [
      "v4 + 16 (a lone 16-octet field reads as a bad MAC)",
      cat(header(VN4_CLIENT), ef(1, 16)),
      DECODE_BAD_MAC_LENGTH,
    ],
    ["v4 + MD5 MAC", cat(header(VN4_CLIENT), new Uint8Array(20)), DECODE_OK],
    ["v4 + SHA-1 MAC", cat(header(VN4_CLIENT), new Uint8Array(24)), DECODE_OK],
    ["v4 + field 28", cat(header(VN4_CLIENT), ef(1, 28)), DECODE_OK],
    ["v4 + field 16 + field 28", cat(header(VN4_CLIENT), ef(1, 16), ef(2, 28)), DECODE_OK],
    ["v4 + field 16 + MAC 20", cat(header(VN4_CLIENT), ef(1, 16), new Uint8Array(20)), DECODE_OK],
    [
      "v4 + field 16 + field 20 (last too short, read as MAC 20)",
      cat(header(VN4_CLIENT), ef(1, 16), ef(2, 20)),
      DECODE_OK,
    ],
    ["v4 + field 24 + crypto-NAK", cat(header(VN4_CLIENT), ef(1, 24), new Uint8Array(4)), DECODE_OK],
    ["v4 + field 16 claiming 16 of 28", cat(header(VN4_CLIENT), ef(1, 28, 16)), DECODE_BAD_MAC_LENGTH],
    ["v4 + length field 12", cat(header(VN4_CLIENT), ef(1, 28, 12)), DECODE_BAD_EXTENSION_LENGTH],
    ["v4 + length field 0", cat(header(VN4_CLIENT), ef(1, 28, 0)), DECODE_BAD_EXTENSION_LENGTH],
    ["v4 + length field 30", cat(header(VN4_CLIENT), ef(1, 28, 30)), DECODE_BAD_EXTENSION_LENGTH],
    ["v4 + length field past the end", cat(header(VN4_CLIENT), ef(1, 28, 32)), DECODE_BAD_EXTENSION_LENGTH],
    [
      "v4 + second field past the end",
      cat(header(VN4_CLIENT), ef(1, 16), ef(2, 28, 0xfffc)),
      DECODE_BAD_EXTENSION_LENGTH,
    ],
    ["v3 + MD5 MAC", cat(header(VN3_CLIENT), new Uint8Array(20)), DECODE_OK],
    ["v3 + crypto-NAK", cat(header(VN3_CLIENT), new Uint8Array(4)), DECODE_OK],
    ["v3 + DES authenticator (12)", cat(header(VN3_CLIENT), new Uint8Array(12)), DECODE_BAD_MAC_LENGTH],
    ["v3 + field 28 (no fields before v4)", cat(header(VN3_CLIENT), ef(1, 28)), DECODE_BAD_MAC_LENGTH],
    ["v4 at the limit", cat(header(VN4_CLIENT), ef(1, NTP_MAX_PACKET_LENGTH - 48)), DECODE_OK],
    ["v4 over the limit", cat(header(VN4_CLIENT), ef(1, NTP_MAX_PACKET_LENGTH - 48 + 4)), DECODE_TOO_LONG],
    ["too long wins over bad version", cat(header(0), new Uint8Array(2000)), DECODE_TOO_LONG],
    ["too short wins over bad version", header(0).subarray(0, 20), DECODE_TOO_SHORT],
    ["bad version wins over bad length", cat(header(0), new Uint8Array(1)), DECODE_BAD_VERSION],
  ];
  for (const [name, bytes, expected] of cases) {
    it(`${name}: ${expected === DECODE_OK ? "OK" : decodeErrorName(expected)}`, () => {
      assert.equal(checkPacket(bytes, bytes.length), expected);
      assert.equal(referenceCheck(bytes), expected, "the reference model agrees");
      if (expected === DECODE_OK) decodePacket(bytes);
      else
        assert.throws(
          () => decodePacket(bytes),
          (e: unknown) =>
            e instanceof NtpDecodeError && e.code === decodeErrorName(expected) && e.message.length > 0,
        );
    });
  }

  it("judges only buf[0..length), clamped to the buffer", () => {
    const big = cat(header(VN4_CLIENT), new Uint8Array(9).fill(0xff));
    assert.equal(checkPacket(big, 48), DECODE_OK, "trailing octets beyond length are ignored");
    assert.equal(checkPacket(big, 52), DECODE_OK, "a crypto-NAK");
    assert.equal(checkPacket(big, 47), DECODE_TOO_SHORT);
    assert.equal(checkPacket(big, 1000), DECODE_BAD_LENGTH, "clamped to 57");
    assert.equal(checkPacket(big, -1), DECODE_TOO_SHORT);
    assert.equal(checkPacket(big, Number.NaN), DECODE_TOO_SHORT);
  });
});

describe("checkPacket and decodePacket on arbitrary octets", () => {
  it("checkPacket agrees with the reference model", () => {
    fc.assert(
      fc.property(nearValidBytes, (b) => {
        assert.equal(checkPacket(b, b.length), referenceCheck(b));
      }),
      { numRuns: 20000 },
    );
  });

  it("decodePacket throws iff checkPacket rejects, only NtpDecodeError, with the same code", () => {
    let ok = 0;
    fc.assert(
      fc.property(nearValidBytes, (b) => {
        const code = checkPacket(b, b.length);
        let thrown: unknown = null;
        let p: NtpPacket | null = null;
        try {
          p = decodePacket(b);
        } catch (e) {
          thrown = e;
        }
        if (code === DECODE_OK) {
          ok++;
          assert.equal(thrown, null);
          assert.ok(p !== null);
          assert.deepEqual(Buffer.from(encodePacket(p)), Buffer.from(b), "and re-encodes to the same octets");
          // RFC 7822 §3 as stated: with no MAC, the last field of an accepted packet is >= 28 octets.
          const last = p.extensions[p.extensions.length - 1];
          if (last !== undefined && p.mac === null) assert.ok(4 + last.value.length >= 28);
        } else {
          assert.ok(thrown instanceof NtpDecodeError, String(thrown));
          assert.equal(thrown.code, decodeErrorName(code));
        }
      }),
      { numRuns: 20000 },
    );
    assert.ok(ok > 4000, `enough valid cases generated (${ok})`);
  });

  it("every error code is reachable from the generator", () => {
    const seen = new Set<number>();
    fc.assert(
      fc.property(nearValidBytes, (b) => {
        seen.add(checkPacket(b, b.length));
      }),
      { numRuns: 5000 },
    );
    assert.deepEqual(
      [...seen].sort(),
      [
        DECODE_OK,
        DECODE_TOO_SHORT,
        DECODE_BAD_VERSION,
        DECODE_BAD_LENGTH,
        DECODE_BAD_EXTENSION_LENGTH,
        DECODE_BAD_MAC_LENGTH,
      ].sort(),
      "TOO_LONG is covered by the table above",
    );
  });
});

describe("encodePacket", () => {
  it("decode(encode(p)) deep-equals p for any valid packet, and checkPacket accepts it", () => {
    fc.assert(
      fc.property(validPacket, (p) => {
        const b = encodePacket(p);
        assert.equal(checkPacket(b, b.length), DECODE_OK);
        assert.deepEqual(decodePacket(b), p);
      }),
      { numRuns: 5000 },
    );
  });

  it("encodePacketInto writes at an offset, returns the length, and leaves the rest alone", () => {
    fc.assert(
      fc.property(validPacket, fc.nat(64), (p, offset) => {
        const len = encodePacket(p).length;
        const buf = new Uint8Array(offset + len + 8).fill(0x5a);
        assert.equal(encodePacketInto(p, buf, offset), len);
        assert.deepEqual(buf.subarray(offset, offset + len), new Uint8Array(encodePacket(p)));
        for (let i = 0; i < offset; i++) assert.equal(buf[i], 0x5a);
        for (let i = offset + len; i < buf.length; i++) assert.equal(buf[i], 0x5a);
      }),
      { numRuns: 500 },
    );
  });

  it("refuses a buffer too small, writing nothing", () => {
    const buf = new Uint8Array(60).fill(1);
    assert.throws(
      () => encodePacketInto(base(), buf, 13),
      (e: unknown) => e instanceof NtpValueError && e.code === "ERR_NTP_BUFFER_TOO_SMALL",
    );
    assert.ok(buf.every((x) => x === 1));
  });

  it("refuses extension fields a receiver would take for a MAC (RFC 7822 §3)", () => {
    const ambiguous: [string, NtpPacket][] = [
      ["16, no MAC", base({ extensions: [makeExtensionField(1, new Uint8Array(0))] })],
      ["24, no MAC", base({ extensions: [makeExtensionField(1, new Uint8Array(20))] })],
      [
        "28 then 20, no MAC",
        base({
          extensions: [makeExtensionField(1, new Uint8Array(24)), makeExtensionField(2, new Uint8Array(16))],
        }),
      ],
      [
        "20 + crypto-NAK",
        base({
          extensions: [makeExtensionField(1, new Uint8Array(16))],
          mac: { keyId: 0, digest: new Uint8Array(0) },
        }),
      ],
    ];
    for (const [name, p] of ambiguous) {
      assert.throws(
        () => encodePacket(p),
        (e: unknown) => e instanceof NtpValueError && e.code === "ERR_NTP_AMBIGUOUS_EXTENSIONS",
        name,
      );
    }
    const fine: NtpPacket[] = [
      base({ extensions: [makeExtensionField(1, new Uint8Array(0), 28)] }),
      base({
        extensions: [makeExtensionField(1, new Uint8Array(20))],
        mac: { keyId: 0, digest: new Uint8Array(0) },
      }),
      base({
        extensions: [makeExtensionField(1, new Uint8Array(0))],
        mac: { keyId: 7, digest: new Uint8Array(16) },
      }),
    ];
    for (const p of fine) assert.deepEqual(decodePacket(encodePacket(p)), p);
  });

  it("refuses fields out of range, naming them", () => {
    const bad: [Partial<NtpPacket>, string][] = [
      [{ leap: 4 }, "leap"],
      [{ version: 0 }, "version"],
      [{ version: 5 }, "version"],
      [{ mode: 8 }, "mode"],
      [{ stratum: 256 }, "stratum"],
      [{ poll: 128 }, "poll"],
      [{ precision: -129 }, "precision"],
      [{ rootDelay: -1 }, "rootDelay"],
      [{ rootDispersion: 2 ** 32 }, "rootDispersion"],
      [{ refId: 1.5 }, "refId"],
      [{ originTimestamp: { seconds: 2 ** 32, fraction: 0 } }, "originTimestamp.seconds"],
      [{ transmitTimestamp: { seconds: 0, fraction: Number.NaN } }, "transmitTimestamp.fraction"],
      [{ version: 3, extensions: [makeExtensionField(1, new Uint8Array(0), 28)] }, "NTPv4"],
      [{ extensions: [{ type: 1, value: new Uint8Array(25) }] }, "extensions[0]"],
      [
        {
          extensions: [{ type: 1, value: new Uint8Array(8) }],
          mac: { keyId: 1, digest: new Uint8Array(16) },
        },
        "extensions[0]",
      ],
      [{ extensions: [{ type: 0x10000, value: new Uint8Array(24) }] }, "extensions[0].type"],
      [{ mac: { keyId: 1, digest: new Uint8Array(8) } }, "mac.digest"],
      [{ mac: { keyId: -1, digest: new Uint8Array(16) } }, "mac.keyId"],
    ];
    for (const [over, name] of bad) {
      assert.throws(
        () => encodePacket(base(over)),
        (e: unknown) =>
          e instanceof NtpValueError && e.code === "ERR_NTP_INVALID_FIELD" && e.message.includes(name),
        name,
      );
    }
    assert.throws(
      () =>
        encodePacket(base({ extensions: [makeExtensionField(1, new Uint8Array(NTP_MAX_PACKET_LENGTH))] })),
      (e: unknown) => e instanceof NtpValueError && e.code === "ERR_NTP_PACKET_TOO_LONG",
    );
  });

  it("makeExtensionField pads to a multiple of 4 and to the minimum", () => {
    assert.equal(makeExtensionField(1, new Uint8Array(0)).value.length, 12);
    assert.equal(makeExtensionField(1, new Uint8Array(13)).value.length, 16);
    assert.equal(makeExtensionField(1, new Uint8Array(0), 28).value.length, 24);
    assert.deepEqual(
      makeExtensionField(1, new Uint8Array([1, 2, 3])).value.subarray(0, 4),
      new Uint8Array([1, 2, 3, 0]),
    );
  });
});

describe("decode error codes", () => {
  it("have stable string and numeric twins", () => {
    const all = [
      [DECODE_TOO_SHORT, "ERR_NTP_TOO_SHORT"],
      [DECODE_TOO_LONG, "ERR_NTP_TOO_LONG"],
      [DECODE_BAD_VERSION, "ERR_NTP_BAD_VERSION"],
      [DECODE_BAD_LENGTH, "ERR_NTP_BAD_LENGTH"],
      [DECODE_BAD_EXTENSION_LENGTH, "ERR_NTP_BAD_EXTENSION_LENGTH"],
      [DECODE_BAD_MAC_LENGTH, "ERR_NTP_BAD_MAC_LENGTH"],
    ] as const;
    assert.equal(DECODE_OK, 0);
    for (const [n, name] of all) {
      assert.equal(decodeErrorName(n), name);
      assert.equal(decodeErrorNumber(name), n);
    }
    for (const bad of [DECODE_OK, 7, -1, 1.5]) {
      assert.throws(
        () => decodeErrorName(bad),
        (e: unknown) => e instanceof NtpValueError && e.code === "ERR_NTP_INVALID_ARGUMENT",
      );
    }
    const e = new NtpDecodeError("ERR_NTP_TOO_SHORT", "x");
    assert.ok(e instanceof Error);
    assert.equal(e.name, "NtpDecodeError");
  });
});
