// The broadcast client's pure part (src/client/broadcast.ts, paper §9) on virtual time: calibration by a
// unicast sample, listening with the calibrated delay, recalibration when the path changes, and broadcasts
// from servers not calibrated with ignored.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BroadcastListener, MAX_FREQ } from "../../src/client/broadcast.ts";
import type { Sample } from "../../src/client/measure.ts";
import { MODE_BROADCAST, writeNtpTimestampFromUnixMs } from "../../src/protocol/index.ts";
import { sample } from "../helpers/client.ts";

const T0 = Date.UTC(2026, 11, 5, 0, 0, 0);

/** A mode 5 packet whose transmit time is `t3Ms` (server clock). */
function broadcast(t3Ms: number, o: { leap?: number; stratum?: number; mode?: number } = {}): Uint8Array {
  const b = new Uint8Array(48);
  b[0] = ((o.leap ?? 0) << 6) | (4 << 3) | (o.mode ?? MODE_BROADCAST);
  b[1] = o.stratum ?? 2;
  b[2] = 6;
  writeNtpTimestampFromUnixMsFuzzed(b, t3Ms);
  return b;
}

function writeNtpTimestampFromUnixMsFuzzed(b: Uint8Array, ms: number): void {
  writeNtpTimestampFromUnixMs(b, 40, ms);
}

function unicast(offsetMs: number, delayMs: number, atMs: number): Sample {
  return sample(atMs, { offsetMs, delayMs });
}

// The server's clock is 250 ms ahead of ours; broadcasts take 7 ms to arrive.
const OFFSET = 250;
const PATH = 7;
/** A broadcast sent at our time `t` (server time t + OFFSET) arriving PATH ms later: [packet, T4]. */
function heard(t: number, path = PATH): [Uint8Array, number] {
  return [broadcast(t + OFFSET), t + path];
}

describe("BroadcastListener", () => {
  it("calibrates a new server by unicast, then gives its broadcasts' offsets with the calibrated delay", () => {
    const l = new BroadcastListener({ pairs: 1 });
    const [p0, t0] = heard(T0);
    assert.deepEqual(l.onBroadcast(p0, "192.0.2.1", t0), {
      kind: "calibrate",
      server: "192.0.2.1",
      reason: "new-server",
    });
    // Until the exchange ends, its broadcasts are not used.
    const [p1, t1] = heard(T0 + 10);
    assert.deepEqual(l.onBroadcast(p1, "192.0.2.1", t1), {
      kind: "ignored",
      server: "192.0.2.1",
      reason: "calibrating",
    });
    const delay = l.calibratedWith("192.0.2.1", unicast(OFFSET, 2, t0 + 5));
    assert.ok(delay !== undefined && Math.abs(delay - PATH) < 0.01, `delay ${delay}`);
    assert.deepEqual(l.calibrated(), [{ server: "192.0.2.1", delayMs: delay! }]);
    for (let i = 1; i <= 5; i++) {
      const [p, t] = heard(T0 + i * 64_000);
      const v = l.onBroadcast(p, "192.0.2.1", t);
      assert.equal(v.kind, "sample");
      if (v.kind !== "sample") return;
      assert.ok(Math.abs(v.sample.offsetMs - OFFSET) < 0.01, `offset ${v.sample.offsetMs}`);
      assert.equal(v.sample.stratum, 2);
    }
  });

  it("calibrates on several broadcast and unicast pairs and keeps the least disturbed", () => {
    const l = new BroadcastListener({ pairs: 3 });
    // Pair 1: the broadcast was read 3 ms late (a busy client): its delay comes out 3 ms too long.
    const [p1, t1] = heard(T0, PATH + 3);
    assert.equal(l.onBroadcast(p1, "192.0.2.1", t1).kind, "calibrate");
    assert.equal(l.calibratedWith("192.0.2.1", unicast(OFFSET, 0.1, t1)), undefined);
    assert.deepEqual(l.calibrated(), [], "not listened to before the last pair");
    // Pair 2: clean.
    const [p2, t2] = heard(T0 + 64_000);
    assert.deepEqual(l.onBroadcast(p2, "192.0.2.1", t2), {
      kind: "calibrate",
      server: "192.0.2.1",
      reason: "next-pair",
    });
    assert.equal(l.calibratedWith("192.0.2.1", unicast(OFFSET, 0.1, t2)), undefined);
    // Pair 3: its unicast reply was slow and lopsided (4 ms round trip, offset 1.5 ms off).
    const [p3, t3] = heard(T0 + 128_000);
    assert.equal(l.onBroadcast(p3, "192.0.2.1", t3).kind, "calibrate");
    const delay = l.calibratedWith("192.0.2.1", unicast(OFFSET - 1.5, 4, t3));
    assert.ok(delay !== undefined && Math.abs(delay - PATH) < 0.01, `delay ${delay}: pair 2's`);
    const [p4, t4] = heard(T0 + 192_000);
    const v = l.onBroadcast(p4, "192.0.2.1", t4);
    assert.ok(v.kind === "sample" && Math.abs(v.sample.offsetMs - OFFSET) < 0.01);
  });

  it("ignores broadcasts from a server it did not calibrate with: another server starts its own calibration", () => {
    const l = new BroadcastListener({ pairs: 1 });
    const [p0, t0] = heard(T0);
    l.onBroadcast(p0, "192.0.2.1", t0);
    l.calibratedWith("192.0.2.1", unicast(OFFSET, 2, t0));
    const [p1, t1] = heard(T0 + 1000);
    assert.equal(l.onBroadcast(p1, "192.0.2.9", t1).kind, "calibrate");
    assert.equal(l.onBroadcast(p1, "192.0.2.9", t1 + 1).kind, "ignored");
    // Its calibration fails (no reply): forgotten, so nothing of it is used; it is not asked again for
    // retryS (64 s), however often it broadcasts, and then tried again.
    l.calibrationFailed("192.0.2.9", t1 + 2);
    assert.deepEqual(
      l.calibrated().map((c) => c.server),
      ["192.0.2.1"],
    );
    assert.equal(l.calibratedWith("192.0.2.9", unicast(0, 1, t1)), Number.NaN);
    for (let i = 1; i <= 60; i++)
      assert.deepEqual(l.onBroadcast(p1, "192.0.2.9", t1 + 2 + i * 1000), {
        kind: "ignored",
        server: "192.0.2.9",
        reason: "calibration-failed",
      });
    assert.equal(l.onBroadcast(p1, "192.0.2.9", t1 + 2 + 64_000).kind, "calibrate");
  });

  it("a single broadcast that moved is a spike and is not used; two in a row recalibrate", () => {
    const l = new BroadcastListener({ driftMs: 5, pairs: 1 });
    const [p0, t0] = heard(T0);
    l.onBroadcast(p0, "192.0.2.1", t0);
    l.calibratedWith("192.0.2.1", unicast(OFFSET, 2, t0));
    // The first broadcast after calibration measures the drift rate (none here).
    const [pf, tf] = heard(T0 + 32_000);
    assert.equal(l.onBroadcast(pf, "192.0.2.1", tf).kind, "sample");
    // One late broadcast (queued 40 ms): not a sample.
    const [ps, ts] = heard(T0 + 64_000, PATH + 40);
    assert.deepEqual(l.onBroadcast(ps, "192.0.2.1", ts), {
      kind: "ignored",
      server: "192.0.2.1",
      reason: "spike",
    });
    // The next is normal again: used.
    const [pn, tn] = heard(T0 + 128_000);
    assert.equal(l.onBroadcast(pn, "192.0.2.1", tn).kind, "sample");
    // The path lengthens for good by 30 ms: first a spike, then recalibration.
    const [pa, ta] = heard(T0 + 192_000, PATH + 30);
    assert.equal(l.onBroadcast(pa, "192.0.2.1", ta).kind, "ignored");
    const [pb, tb] = heard(T0 + 256_000, PATH + 30);
    const v = l.onBroadcast(pb, "192.0.2.1", tb);
    assert.equal(v.kind, "calibrate");
    if (v.kind !== "calibrate") return;
    assert.equal(v.reason, "drift");
    assert.ok(Math.abs((v.driftMs ?? 0) + 30) < 0.01, `drift ${v.driftMs}`);
    // The new calibration measures the new delay, and the offsets are right again.
    const delay = l.calibratedWith("192.0.2.1", unicast(OFFSET, 2, tb));
    assert.ok(delay !== undefined && Math.abs(delay - (PATH + 30)) < 0.01, `delay ${delay}`);
    const [pc, tc] = heard(T0 + 320_000, PATH + 30);
    const w = l.onBroadcast(pc, "192.0.2.1", tc);
    assert.ok(w.kind === "sample" && Math.abs(w.sample.offsetMs - OFFSET) < 0.01);
  });

  it("the clocks' drift within MAX_FREQ is no reason to recalibrate", () => {
    const l = new BroadcastListener({ driftMs: 1, pairs: 1 });
    const [p0, t0] = heard(T0);
    l.onBroadcast(p0, "192.0.2.1", t0);
    l.calibratedWith("192.0.2.1", unicast(OFFSET, 2, t0));
    // Our clock runs 400 ppm slow for 1024 s: 410 ms apart, under MAX_FREQ's 512 ms plus 1 ms.
    const gap = 1024_000;
    const drift = 400e-6 * gap;
    assert.ok(drift < MAX_FREQ * gap);
    const v = l.onBroadcast(broadcast(T0 + gap + OFFSET + drift), "192.0.2.1", T0 + gap + PATH);
    assert.equal(v.kind, "sample");
    // From then on the rate is known, and a steady 400 ppm keeps giving samples at 64 s.
    for (let i = 1; i <= 4; i++) {
      const t = T0 + gap + i * 64_000;
      const w = l.onBroadcast(broadcast(t + OFFSET + 400e-6 * (t - T0)), "192.0.2.1", t + PATH);
      assert.equal(w.kind, "sample", `broadcast ${i}`);
    }
    // While 20 ms more (the path) is caught at once: above 1 ms + PHI * 64 s.
    const t = T0 + gap + 5 * 64_000;
    assert.deepEqual(l.onBroadcast(broadcast(t + OFFSET + 400e-6 * (t - T0)), "192.0.2.1", t + PATH + 20), {
      kind: "ignored",
      server: "192.0.2.1",
      reason: "spike",
    });
  });

  it("ignores what is not a synchronised broadcast, and servers not listened to", () => {
    const l = new BroadcastListener({ servers: ["192.0.2.1"], maxServers: 1 });
    const [p, t] = heard(T0);
    assert.equal(l.onBroadcast(p.subarray(0, 40), "192.0.2.1", t).kind, "ignored");
    const r = (o: Parameters<typeof broadcast>[1]) => l.onBroadcast(broadcast(T0, o), "192.0.2.1", t);
    assert.deepEqual(r({ mode: 4 }), { kind: "ignored", server: "192.0.2.1", reason: "not-broadcast" });
    assert.deepEqual(r({ leap: 3 }), { kind: "ignored", server: "192.0.2.1", reason: "unsynchronised" });
    assert.deepEqual(r({ stratum: 16 }), { kind: "ignored", server: "192.0.2.1", reason: "unsynchronised" });
    assert.deepEqual(l.onBroadcast(p, "192.0.2.2", t), {
      kind: "ignored",
      server: "192.0.2.2",
      reason: "not-listened-to",
    });
    assert.equal(l.onBroadcast(p, "::ffff:192.0.2.1", t).kind, "calibrate");
    // The failed list is bounded too: 4 maxServers forgers, the oldest forgotten first.
    const f = new BroadcastListener({ maxServers: 1 });
    for (let i = 1; i <= 5; i++) {
      assert.equal(f.onBroadcast(p, `198.51.100.${i}`, t).kind, "calibrate");
      f.calibrationFailed(`198.51.100.${i}`, t);
    }
    assert.equal(f.onBroadcast(p, "198.51.100.1", t + 1).kind, "calibrate", "the oldest was forgotten");
    assert.equal(f.onBroadcast(p, "198.51.100.5", t + 1).kind, "ignored");
    const m = new BroadcastListener({ maxServers: 1 });
    m.onBroadcast(p, "192.0.2.1", t);
    assert.deepEqual(m.onBroadcast(p, "192.0.2.2", t), {
      kind: "ignored",
      server: "192.0.2.2",
      reason: "too-many-servers",
    });
  });
});
