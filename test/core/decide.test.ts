import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decide, stampTransmit, writeReply } from "../../src/core/decide.ts";
import {
  isServed,
  R_DROP_MODE_BROADCAST,
  R_DROP_MODE_CONTROL,
  R_DROP_MODE_PASSIVE,
  R_DROP_MODE_PRIVATE,
  R_DROP_MODE_RESERVED,
  R_DROP_MODE_SERVER,
  R_DROP_SYMMETRIC_DISABLED,
  R_MALFORMED_BAD_VERSION,
  R_MALFORMED_TOO_SHORT,
  R_SERVED_CLIENT,
  R_SERVED_SYMMETRIC,
  REASON_COUNT,
} from "../../src/core/reasons.ts";
import type { ServeState } from "../../src/core/serve-state.ts";
import { decodePacket, ntpToUnixMs, shortToSeconds } from "../../src/protocol/index.ts";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

function state(over: Partial<ServeState> = {}): ServeState {
  return {
    leap: 0,
    stratum: 10,
    precision: -20,
    rootDelay: 0.0125,
    rootDispersion: 0.5,
    dispersionRate: 0,
    refId: 0x4c4f434c,
    refTimeMs: NOW - 30_000,
    offsetMs: 0,
    answerSymmetric: true,
    ...over,
  };
}

function request(version: number, mode: number, poll = 6, length = 48): Buffer {
  const b = Buffer.alloc(length);
  b[0] = (0 << 6) | (version << 3) | mode;
  b[2] = poll & 0xff;
  // A transmit timestamp with every byte distinct, so a wrong copy shows.
  for (let i = 0; i < 8; i++) b[40 + i] = 0xa0 + i;
  return b;
}

describe("decide", () => {
  it("serves mode 3 of every version 1-4 and NTPv1's unspecified mode", () => {
    for (const v of [1, 2, 3, 4]) assert.equal(decide(request(v, 3), 48, state()), R_SERVED_CLIENT);
    assert.equal(decide(request(1, 0), 48, state()), R_SERVED_CLIENT);
    assert.equal(decide(request(2, 0), 48, state()), R_DROP_MODE_RESERVED);
    assert.equal(decide(request(4, 0), 48, state()), R_DROP_MODE_RESERVED);
  });

  it("never answers modes 2, 4, 5, 6, 7 (no loops, no amplification)", () => {
    assert.equal(decide(request(4, 2), 48, state()), R_DROP_MODE_PASSIVE);
    assert.equal(decide(request(4, 4), 48, state()), R_DROP_MODE_SERVER);
    assert.equal(decide(request(4, 5), 48, state()), R_DROP_MODE_BROADCAST);
    assert.equal(decide(request(2, 6), 48, state()), R_DROP_MODE_CONTROL);
    assert.equal(decide(request(2, 7), 48, state()), R_DROP_MODE_PRIVATE);
    // ntpq's requests are 12-octet control headers and monlist requests are short too: counted by mode.
    assert.equal(decide(request(2, 6, 0, 12), 12, state()), R_DROP_MODE_CONTROL);
    assert.equal(decide(request(2, 7, 0, 8), 8, state()), R_DROP_MODE_PRIVATE);
  });

  it("answers mode 1 in mode 2 only when answer-symmetric is on", () => {
    assert.equal(decide(request(4, 1), 48, state()), R_SERVED_SYMMETRIC);
    assert.equal(decide(request(4, 1), 48, state({ answerSymmetric: false })), R_DROP_SYMMETRIC_DISABLED);
  });

  it("drops malformed packets with the reason", () => {
    assert.equal(decide(request(4, 3), 47, state()), R_MALFORMED_TOO_SHORT);
    assert.equal(decide(Buffer.alloc(0), 0, state()), R_MALFORMED_TOO_SHORT);
    assert.equal(decide(request(0, 3), 48, state()), R_MALFORMED_BAD_VERSION);
    assert.equal(decide(request(5, 3), 48, state()), R_MALFORMED_BAD_VERSION);
    assert.equal(decide(request(7, 3), 48, state()), R_MALFORMED_BAD_VERSION);
  });

  it("classifies any bytes into exactly one known reason without throwing", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (bytes) => {
        const r = decide(bytes, bytes.length, state());
        assert.ok(Number.isInteger(r) && r >= 0 && r < REASON_COUNT);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("writeReply", () => {
  it("builds an RFC 5905 mode 4 reply in place", () => {
    const buf = request(3, 3, 10);
    const transmit = Buffer.from(buf.subarray(40, 48));
    assert.equal(decide(buf, 48, state()), R_SERVED_CLIENT);
    const len = writeReply(buf, NOW, state());
    stampTransmit(buf, NOW + 0.25);
    assert.equal(len, 48);
    const p = decodePacket(buf.subarray(0, len));
    assert.equal(p.leap, 0);
    assert.equal(p.version, 3, "version echoed");
    assert.equal(p.mode, 4);
    assert.equal(p.stratum, 10);
    assert.equal(p.poll, 10, "poll echoed");
    assert.equal(p.precision, -20);
    assert.equal(p.refId, 0x4c4f434c);
    assert.ok(Math.abs(shortToSeconds(p.rootDelay) - 0.0125) < 1e-4);
    assert.ok(Math.abs(shortToSeconds(p.rootDispersion) - 0.5) < 1e-4);
    assert.deepEqual(
      Buffer.from(buf.subarray(24, 32)),
      transmit,
      "origin = the request's transmit, bit for bit",
    );
    assert.ok(Math.abs(ntpToUnixMs(p.receiveTimestamp, NOW) - NOW) < 0.001);
    assert.ok(Math.abs(ntpToUnixMs(p.transmitTimestamp, NOW) - (NOW + 0.25)) < 0.001);
    assert.ok(Math.abs(ntpToUnixMs(p.referenceTimestamp, NOW) - (NOW - 30_000)) < 0.001);
  });

  it("clamps the echoed poll into 4..17 and answers symmetric active in mode 2", () => {
    const low = request(4, 3, 0);
    writeReply(low, NOW, state());
    assert.equal(low[2], 4);
    const high = request(4, 3, 30);
    writeReply(high, NOW, state());
    assert.equal(high[2], 17);
    const sym = request(4, 1);
    writeReply(sym, NOW, state());
    assert.equal(sym[0]! & 7, 2);
  });

  it("says leap alarm and stratum 16 when unsynchronised", () => {
    const buf = request(4, 3);
    writeReply(buf, NOW, state({ leap: 3, stratum: 16, refTimeMs: 0 }));
    assert.equal(buf[0]! >> 6, 3);
    assert.equal(buf[1], 16);
    assert.deepEqual([...buf.subarray(16, 24)], [0, 0, 0, 0, 0, 0, 0, 0], "no reference time");
  });

  it("grows root dispersion at the dispersion rate since the reference time", () => {
    const buf = request(4, 3);
    writeReply(buf, NOW, state({ rootDispersion: 0.001, dispersionRate: 15e-6, refTimeMs: NOW - 100_000 }));
    const disp = shortToSeconds(buf.readUInt32BE(8));
    assert.ok(Math.abs(disp - (0.001 + 100 * 15e-6)) < 2e-5, `dispersion ${disp}`);
  });

  it("never makes a reply longer than its request, whatever it carried", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 10 }), (v, extraWords) => {
        const buf = request(v, 3, 6, 48 + extraWords * 4);
        const r = decide(buf, buf.length, state());
        if (!isServed(r)) return;
        assert.ok(writeReply(buf, NOW, state()) <= buf.length);
      }),
    );
  });
});
