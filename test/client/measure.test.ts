// One exchange evaluated (src/client/measure.ts): RFC 5905 §8 offset and delay, era handling across the
// 2036 rollover, the rejections, the request format, the root distance.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { buildRequest, evaluateReply, MINDISP, PHI, rootDistance } from "../../src/client/measure.ts";
import { seededRandom } from "../../src/client/random.ts";
import { NTP_ERA_SECONDS, NTP_UNIX_EPOCH_OFFSET, readNtpTimestamp } from "../../src/protocol/index.ts";
import { makeReply } from "./sim.ts";

const T0 = Date.UTC(2026, 5, 1);
/** 2036-02-07T06:28:16Z: the NTP seconds field wraps to 0 (start of era 1). */
const ERA1_MS = (NTP_ERA_SECONDS - NTP_UNIX_EPOCH_OFFSET) * 1000;

describe("evaluateReply", () => {
  it("offset and delay per RFC 5905: ((T2-T1)+(T3-T4))/2 and (T4-T1)-(T3-T2)", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: 0, max: 2000, noNaN: true }),
        fc.integer({ min: -1000, max: 1000 }),
        (offsetMs, rttMs, day) => {
          const t1 = T0 + day * 86400_000;
          const { packet, transmit } = buildRequest(t1, seededRandom(day), 6);
          const reply = makeReply(packet, t1 + rttMs / 2, { offsetMs });
          const v = evaluateReply(reply, transmit, t1, t1 + rttMs + 0.01);
          assert.ok(v.ok);
          assert.ok(Math.abs(v.sample.offsetMs - offsetMs) < 1e-3, `${v.sample.offsetMs} vs ${offsetMs}`);
          assert.ok(Math.abs(v.sample.delayMs - rttMs) < 1e-3);
        },
      ),
    );
  });

  it("across the 2036 era rollover: our T1 in era 0, the server's T2/T3 in era 1", () => {
    const t1 = ERA1_MS - 0.3; // 0.3 ms before the wrap
    const { packet, transmit } = buildRequest(t1, seededRandom(1), 6);
    const reply = makeReply(packet, t1 + 5, { offsetMs: 10 }); // server stamps 15 ms later: era 1
    assert.ok(readNtpTimestamp(reply, 32).seconds < 5, "T2 has wrapped to era 1");
    const v = evaluateReply(reply, transmit, t1, t1 + 10.01); // the server took 0.01 ms (makeReply)
    assert.ok(v.ok);
    assert.ok(Math.abs(v.sample.offsetMs - 10) < 1e-3, `offset ${v.sample.offsetMs} ms`);
    assert.ok(Math.abs(v.sample.delayMs - 10) < 1e-3);
  });

  it("in era 1, years after the rollover", () => {
    const t1 = ERA1_MS + 20 * 365 * 86400_000;
    const { packet, transmit } = buildRequest(t1, seededRandom(2), 6);
    const v = evaluateReply(makeReply(packet, t1 + 1, { offsetMs: -42 }), transmit, t1, t1 + 2.01);
    assert.ok(v.ok);
    assert.ok(Math.abs(v.sample.offsetMs + 42) < 1e-3);
  });

  const request = buildRequest(T0, seededRandom(3), 6);
  const judge = (f: Parameters<typeof makeReply>[2]) =>
    evaluateReply(makeReply(request.packet, T0 + 1, f), request.transmit, T0, T0 + 2);

  for (const [what, f, reason] of [
    ["leap indicator 3 (unsynchronised)", { leap: 3 }, "unsynchronised"],
    ["stratum 16", { stratum: 16 }, "bad-stratum"],
    ["a zero transmit timestamp", { zeroTransmit: true }, "zero-transmit"],
    ["a wrong origin timestamp", { origin: { seconds: 5, fraction: 6 } }, "origin-mismatch"],
  ] as const) {
    it(`rejects ${what}`, () => {
      const v = judge(f);
      assert.ok(!v.ok);
      assert.equal(v.reason, reason);
    });
  }

  it("stratum 0 is a kiss-o'-death, reported with its code, never a sample", () => {
    const v = judge({ kiss: "RATE" });
    assert.ok(!v.ok);
    assert.equal(v.reason, "kiss");
    assert.equal(v.kissCode, 0x52415445);
  });

  it("rejects what is not a server reply", () => {
    const reply = makeReply(request.packet, T0 + 1);
    reply[0] = (reply[0]! & ~7) | 3;
    assert.deepEqual(evaluateReply(reply, request.transmit, T0, T0 + 2), {
      ok: false,
      reason: "not-server-mode",
    });
    assert.deepEqual(evaluateReply(reply.subarray(0, 40), request.transmit, T0, T0 + 2), {
      ok: false,
      reason: "short",
    });
  });
});

describe("buildRequest", () => {
  it("NTPv4 mode 3, our poll exponent, nothing but the transmit timestamp set", () => {
    const { packet, transmit } = buildRequest(T0, seededRandom(4), 10);
    assert.equal(packet.length, 48);
    assert.equal(packet[0], (4 << 3) | 3);
    assert.equal(packet[2], 10);
    assert.ok(packet.subarray(3, 40).every((b) => b === 0));
    assert.equal(transmit.buffer, packet.buffer);
    const ts = readNtpTimestamp(packet, 40);
    assert.equal(ts.seconds, T0 / 1000 + NTP_UNIX_EPOCH_OFFSET);
  });

  it("the fraction is random: 1000 requests at the same instant, 1000 different transmit timestamps", () => {
    const r = seededRandom(5);
    const seen = new Set(
      Array.from({ length: 1000 }, () => readNtpTimestamp(buildRequest(T0, r, 6).packet, 40).fraction),
    );
    assert.equal(seen.size, 1000);
  });
});

describe("rootDistance", () => {
  const sample = {
    offsetMs: 0,
    delayMs: 20,
    leap: 0,
    version: 4,
    stratum: 2,
    poll: 6,
    precision: -20,
    rootDelay: 0.03,
    rootDispersion: 0.004,
    refId: 0,
    atMs: T0,
  };
  it("half the total delay, plus root dispersion, precision, age and jitter", () => {
    const d = rootDistance(sample, 100, 0.002);
    assert.ok(Math.abs(d - (0.05 / 2 + 0.004 + 2 ** -20 + PHI * 100 + 0.002)) < 1e-12);
  });
  it("a round trip under MINDISP counts as MINDISP", () => {
    const d = rootDistance({ ...sample, delayMs: 0.1, rootDelay: 0 }, 0, 0);
    assert.ok(Math.abs(d - (MINDISP / 2 + 0.004 + 2 ** -20)) < 1e-12);
  });
});
