// The broadcast server's pure core (src/core/broadcast.ts): whether a mode 5 packet goes out, and its bytes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  B_SENT,
  B_WITHHELD_UNSYNCHRONISED,
  BROADCAST_REASON_COUNT,
  BROADCAST_REASON_NAMES,
  decideBroadcast,
  pollExponent,
  writeBroadcast,
} from "../../src/core/broadcast.ts";
import { stampTransmit } from "../../src/core/decide.ts";
import type { ServeState } from "../../src/core/serve-state.ts";
import { unsynchronisedState } from "../../src/core/serve-state.ts";
import {
  decodePacket,
  isZeroTimestamp,
  MODE_BROADCAST,
  ntpToUnixMs,
  shortToSeconds,
} from "../../src/protocol/index.ts";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

function state(over: Partial<ServeState> = {}): ServeState {
  return {
    leap: 0,
    stratum: 3,
    precision: -20,
    rootDelay: 0.0125,
    rootDispersion: 0.5,
    dispersionRate: 15e-6,
    refId: 0xc0000201,
    refTimeMs: NOW - 100_000,
    offsetMs: 0,
    answerSymmetric: true,
    ...over,
  };
}

describe("decideBroadcast", () => {
  it("a synchronised server broadcasts; leap alarm or stratum 16 does not", () => {
    assert.equal(decideBroadcast(state()), B_SENT);
    assert.equal(decideBroadcast(state({ leap: 3 })), B_WITHHELD_UNSYNCHRONISED);
    assert.equal(decideBroadcast(state({ stratum: 16 })), B_WITHHELD_UNSYNCHRONISED);
    assert.equal(decideBroadcast(unsynchronisedState(-20, true)), B_WITHHELD_UNSYNCHRONISED);
    // Leap warnings (1, 2) are news for the listeners, not a reason for silence.
    assert.equal(decideBroadcast(state({ leap: 1 })), B_SENT);
  });

  it("every reason has a name", () => {
    assert.equal(BROADCAST_REASON_NAMES.length, BROADCAST_REASON_COUNT);
  });
});

describe("writeBroadcast", () => {
  it("writes a mode 5 packet with the state a reply would carry and no origin or receive time", () => {
    const buf = new Uint8Array(48).fill(0xaa);
    const n = writeBroadcast(buf, NOW, state({ leap: 1 }), pollExponent(64));
    assert.equal(n, 48);
    stampTransmit(buf, NOW + 1);
    const p = decodePacket(buf);
    assert.equal(p.mode, MODE_BROADCAST);
    assert.equal(p.version, 4);
    assert.equal(p.leap, 1);
    assert.equal(p.stratum, 3);
    assert.equal(p.poll, 6);
    assert.equal(p.precision, -20);
    assert.equal(p.refId, 0xc0000201);
    assert.ok(Math.abs(shortToSeconds(p.rootDelay) - 0.0125) < 1e-4);
    // Dispersion grows with the reference time's age, as in a reply: 0.5 + 100 s * 15 ppm.
    assert.ok(Math.abs(shortToSeconds(p.rootDispersion) - 0.5015) < 1e-4);
    assert.ok(Math.abs(ntpToUnixMs(p.referenceTimestamp, NOW) - (NOW - 100_000)) < 1);
    assert.ok(isZeroTimestamp(p.originTimestamp));
    assert.ok(isZeroTimestamp(p.receiveTimestamp));
    assert.ok(Math.abs(ntpToUnixMs(p.transmitTimestamp, NOW) - (NOW + 1)) < 1);
  });

  it("bounds the poll field to RFC 5905's range", () => {
    assert.equal(pollExponent(1), 4);
    assert.equal(pollExponent(64), 6);
    assert.equal(pollExponent(1024), 10);
    assert.equal(pollExponent(65536), 16);
  });
});
