import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  isZeroTimestamp,
  isZeroTimestampAt,
  type NtpTimestamp,
  NtpValueError,
  ntpToUnixMs,
  readNtpTimestamp,
  readNtpTimestampToUnixMs,
  SHORT_MAX_SECONDS,
  secondsToShort,
  shortToSeconds,
  timestampsEqual,
  unixMsToNtp,
  writeNtpTimestamp,
  writeNtpTimestampFromUnixMs,
  writeNtpTimestampFromUnixMsFuzzed,
  ZERO_TIMESTAMP,
} from "../../src/protocol/index.ts";

const OFFSET = 2208988800;
const TWO_32 = 4294967296;
/** 2036-02-07T06:28:16Z: NTP era 0 ends, the seconds field wraps to 0. */
const ERA1_MS = Date.UTC(2036, 1, 7, 6, 28, 16);
/** Half an NTP fraction unit, in ms, plus the 2^-21-unit rounding of the one division: 1.1642e-7 ms. */
const HALF_UNIT_MS = ((0.5 + 2 ** -21) * 1000) / TWO_32;
/** Window of era resolution: [pivot - 2^31 s, pivot + 2^31 s). Test values stay a second inside it. */
const HALF_ERA_MS = 2 ** 31 * 1000;

/** Distance from |x| to the next double up: one unit in the last place. */
function ulp(x: number): number {
  const f = new Float64Array([Math.abs(x)]);
  const b = new BigUint64Array(f.buffer);
  b[0] = b[0]! + 1n;
  return f[0]! - Math.abs(x);
}

/** The exact rational value of a double, as numerator / 2^k. */
function exactDouble(x: number): { num: bigint; k: bigint } {
  const b = new BigUint64Array(new Float64Array([x]).buffer)[0]!;
  const sign = b >> 63n ? -1n : 1n;
  const exp = (b >> 52n) & 0x7ffn;
  const frac = b & ((1n << 52n) - 1n);
  const mant = exp === 0n ? frac : frac | (1n << 52n);
  const e = (exp === 0n ? 1n : exp) - 1075n;
  return e >= 0n ? { num: sign * (mant << e), k: 0n } : { num: sign * mant, k: -e };
}

const msArb = fc.double({ min: -4e12, max: 8e12, noNaN: true, noDefaultInfinity: true });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const tsArb = fc.record({ seconds: u32, fraction: u32 });

describe("unixMsToNtp / ntpToUnixMs (RFC 5905 §6)", () => {
  it("maps known instants", () => {
    assert.deepEqual(unixMsToNtp(0), { seconds: OFFSET, fraction: 0 });
    assert.deepEqual(unixMsToNtp(500), { seconds: OFFSET, fraction: 0x80000000 });
    assert.deepEqual(unixMsToNtp(-1000), { seconds: OFFSET - 1, fraction: 0 });
    assert.deepEqual(
      unixMsToNtp(-OFFSET * 1000),
      { seconds: 0, fraction: 0 },
      "1900-01-01 is era 0 second 0",
    );
    // 1972-01-01, the first date with leap seconds: NTP 2272060800 (RFC 5905 Figure 4).
    assert.deepEqual(unixMsToNtp(Date.UTC(1972, 0, 1)), { seconds: 2272060800, fraction: 0 });
    assert.equal(
      ntpToUnixMs({ seconds: 2272060800, fraction: 0x40000000 }, Date.UTC(2026, 0, 1)),
      63072000250,
    );
  });

  it("wraps at the era boundary 2036-02-07T06:28:16Z", () => {
    assert.deepEqual(unixMsToNtp(ERA1_MS), { seconds: 0, fraction: 0 });
    assert.deepEqual(unixMsToNtp(ERA1_MS - 1), { seconds: 0xffffffff, fraction: Math.round(0.999 * TWO_32) });
    assert.deepEqual(unixMsToNtp(ERA1_MS + 1500), { seconds: 1, fraction: 0x80000000 });
    const now = Date.UTC(2026, 10, 22);
    assert.equal(ntpToUnixMs({ seconds: 0, fraction: 0 }, now), ERA1_MS, "seconds 0 read in 2026 is 2036");
    assert.equal(ntpToUnixMs({ seconds: 0xffffffff, fraction: 0 }, ERA1_MS + 5000), ERA1_MS - 1000);
    assert.equal(ntpToUnixMs({ seconds: 10, fraction: 0 }, ERA1_MS - 5000), ERA1_MS + 10_000);
    assert.equal(
      ntpToUnixMs({ seconds: 0, fraction: 0 }, Date.UTC(1950, 0, 1)),
      -OFFSET * 1000,
      "read in 1950: 1900",
    );
  });

  it("resolves the era to within [-2^31, 2^31) s of the pivot's second", () => {
    // pivots whose position in the era is late (2026), early (2040) and mid (1950, 2100)
    for (const pivot of [
      Date.UTC(2026, 10, 22, 12),
      Date.UTC(2040, 0, 1),
      Date.UTC(1950, 5, 1),
      Date.UTC(2100, 0, 1),
    ]) {
      const pivotNtp = Math.floor(pivot / 1000) + OFFSET;
      const ahead = { seconds: (pivotNtp + 2 ** 31 - 1) % TWO_32, fraction: 0xffffffff };
      const behind = { seconds: (pivotNtp + 2 ** 31) % TWO_32, fraction: 0 };
      const lastMs = (pivotNtp + 2 ** 31 - 1 - OFFSET) * 1000 + (0xffffffff * 1000) / TWO_32;
      assert.equal(ntpToUnixMs(ahead, pivot), lastMs, `last instant ahead of ${pivot}`);
      assert.equal(
        ntpToUnixMs(behind, pivot),
        (pivotNtp - 2 ** 31 - OFFSET) * 1000,
        `first instant behind ${pivot}`,
      );
    }
  });

  it("unixMsToNtp is within 0.5 + 2^-21 fraction units of the exact value (BigInt reference)", () => {
    const check = (ms: number) => {
      const ts = unixMsToNtp(ms);
      assert.ok(Number.isInteger(ts.seconds) && ts.seconds >= 0 && ts.seconds < TWO_32);
      assert.ok(Number.isInteger(ts.fraction) && ts.fraction >= 0 && ts.fraction < TWO_32);
      // exact NTP value in units of 2^-32 s: X = (ms/1000 + OFFSET) * 2^32 = N / D
      const { num, k } = exactDouble(ms);
      const D = 1000n << k;
      const N = (num << 32n) + ((BigInt(OFFSET) * 1000n) << (k + 32n));
      const mine = (BigInt(ts.seconds) << 32n) | BigInt(ts.fraction);
      const mod = (1n << 64n) * D;
      let diff = (((mine * D - N) % mod) + mod) % mod; // mine - X, times D, modulo 2^64 units
      if (diff > mod / 2n) diff -= mod;
      if (diff < 0n) diff = -diff;
      // |mine - X| <= 0.5 + 2^-21  <=>  diff * 2^21 <= D * (2^20 + 1)
      assert.ok(diff * (1n << 21n) <= D * ((1n << 20n) + 1n), `ms=${ms} -> ${ts.seconds}.${ts.fraction}`);
    };
    for (const ms of [
      0,
      -0,
      1e-300,
      -1e-300,
      -0.0001,
      999.9999999999999,
      ERA1_MS - 1e-4,
      2 ** 52,
      -(2 ** 52),
    ]) {
      check(ms);
    }
    fc.assert(fc.property(msArb, check), { numRuns: 2000 });
    fc.assert(fc.property(fc.double({ min: -2000, max: 2000, noNaN: true }), check), { numRuns: 2000 });
  });

  it("round-trips ms -> NTP -> ms within 1.17e-7 ms + 1 ulp of ms, pivot anywhere within ±68 years", () => {
    fc.assert(
      fc.property(
        msArb,
        fc.double({ min: -(HALF_ERA_MS - 2000), max: HALF_ERA_MS - 2000, noNaN: true }),
        (ms, d) => {
          const back = ntpToUnixMs(unixMsToNtp(ms), ms + d);
          const bound = HALF_UNIT_MS + ulp(Math.max(Math.abs(ms), Math.abs(back)));
          assert.ok(Math.abs(back - ms) <= bound, `ms=${ms} back=${back} bound=${bound}`);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("round-trips whole milliseconds to the same integer (a ms is not a whole number of 2^-32 s)", () => {
    fc.assert(
      fc.property(fc.integer({ min: -4e12, max: 8e12 }), (ms) => {
        const back = ntpToUnixMs(unixMsToNtp(ms), ms);
        assert.equal(Math.round(back), ms);
        assert.ok(Math.abs(back - ms) <= HALF_UNIT_MS + ulp(ms));
      }),
      { numRuns: 3000 },
    );
  });

  it("round-trips NTP -> ms -> NTP within the double's resolution, result inside the pivot's window", () => {
    fc.assert(
      fc.property(tsArb, msArb, (ts, pivot) => {
        const ms = ntpToUnixMs(ts, pivot);
        const pivotSec = Math.floor(pivot / 1000);
        const sec = ms / 1000;
        assert.ok(
          sec >= pivotSec - 2 ** 31 - 1e-3 && sec < pivotSec + 2 ** 31 + 1,
          `ms=${ms} pivot=${pivot}`,
        );
        const again = unixMsToNtp(ms);
        let diff = (again.seconds - ts.seconds) * TWO_32 + (again.fraction - ts.fraction);
        // seconds may differ by a wrap of 2^32 when ts sits at the very end of an era
        if (diff > TWO_32 * 2 ** 31) diff -= TWO_32 * TWO_32;
        if (diff < -TWO_32 * 2 ** 31) diff += TWO_32 * TWO_32;
        const unitsPerUlp = (ulp(ms) * TWO_32) / 1000;
        assert.ok(Math.abs(diff) <= unitsPerUlp / 2 + 1, `diff=${diff} units, ulp=${unitsPerUlp} units`);
      }),
      { numRuns: 5000 },
    );
  });

  it("handles instants around the 2036 wrap from pivots on either side", () => {
    fc.assert(
      fc.property(
        fc.double({ min: ERA1_MS - 86_400_000, max: ERA1_MS + 86_400_000, noNaN: true }),
        fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(2100, 0, 1) }),
        (ms, pivot) => {
          const ts = unixMsToNtp(ms);
          assert.equal(ts.seconds < 86_401 || ts.seconds > TWO_32 - 86_402, true);
          const back = ntpToUnixMs(ts, pivot);
          assert.ok(Math.abs(back - ms) <= HALF_UNIT_MS + ulp(ms), `ms=${ms} back=${back}`);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("refuses a time that is not finite", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      assert.throws(
        () => unixMsToNtp(bad),
        (e: unknown) => e instanceof NtpValueError && e.code === "ERR_NTP_INVALID_ARGUMENT",
      );
    }
  });
});

describe("hot-path buffer reads and writes", () => {
  it("write then read gives the object conversions' values, touching only the 8 octets", () => {
    fc.assert(
      fc.property(msArb, fc.integer({ min: 0, max: 40 }), fc.boolean(), (ms, offset, useBuffer) => {
        const buf = useBuffer ? Buffer.alloc(offset + 16, 0xa5) : new Uint8Array(offset + 16).fill(0xa5);
        writeNtpTimestampFromUnixMs(buf, offset, ms);
        const ts = unixMsToNtp(ms);
        assert.deepEqual(readNtpTimestamp(buf, offset), ts);
        for (let i = 0; i < buf.length; i++) if (i < offset || i >= offset + 8) assert.equal(buf[i], 0xa5);
        assert.equal(readNtpTimestampToUnixMs(buf, offset, ms), ntpToUnixMs(ts, ms));
        const ref = Buffer.alloc(8);
        ref.writeUInt32BE(ts.seconds, 0);
        ref.writeUInt32BE(ts.fraction, 4);
        assert.deepEqual(
          Buffer.from(buf.subarray(offset, offset + 8)),
          ref,
          "big-endian as Buffer writes it",
        );
      }),
      { numRuns: 2000 },
    );
  });

  it("writeNtpTimestamp/readNtpTimestamp round-trip any timestamp", () => {
    fc.assert(
      fc.property(tsArb, (ts) => {
        const buf = new Uint8Array(8);
        writeNtpTimestamp(buf, 0, ts);
        assert.deepEqual(readNtpTimestamp(buf, 0), { seconds: ts.seconds, fraction: ts.fraction });
      }),
    );
  });

  it("the fuzzed write keeps the bits above the precision and takes the rest from randomLow", () => {
    fc.assert(
      fc.property(msArb, u32, fc.integer({ min: -40, max: 5 }), (ms, rnd, precision) => {
        const plain = new Uint8Array(8);
        const fuzzed = new Uint8Array(8);
        writeNtpTimestampFromUnixMs(plain, 0, ms);
        writeNtpTimestampFromUnixMsFuzzed(fuzzed, 0, ms, rnd, precision);
        const p = readNtpTimestamp(plain, 0);
        const f = readNtpTimestamp(fuzzed, 0);
        const noise = Math.max(0, Math.min(32, 32 + precision));
        const unit = 2 ** noise; // mask = unit - 1
        assert.equal(f.seconds, p.seconds);
        assert.equal(
          Math.floor(f.fraction / unit),
          Math.floor(p.fraction / unit),
          "bits above the precision",
        );
        assert.equal(f.fraction % unit, rnd % unit, "bits below come from randomLow");
      }),
      { numRuns: 3000 },
    );
    const a = new Uint8Array(8);
    const b = new Uint8Array(8);
    writeNtpTimestampFromUnixMs(a, 0, 1234.5678);
    writeNtpTimestampFromUnixMsFuzzed(b, 0, 1234.5678, 0xffffffff, -32);
    assert.deepEqual(b, a, "precision -32: nothing to fuzz");
    writeNtpTimestampFromUnixMsFuzzed(b, 0, 1234.5678, 0xdeadbeef, 0);
    assert.equal(readNtpTimestamp(b, 0).fraction, 0xdeadbeef, "precision 0: the whole fraction is noise");
    writeNtpTimestampFromUnixMsFuzzed(b, 0, 1500, 0, -20);
    assert.equal(readNtpTimestamp(b, 0).fraction, 0x80000000);
    writeNtpTimestampFromUnixMsFuzzed(b, 0, 1500, 0xffffffff, -20);
    assert.equal(readNtpTimestamp(b, 0).fraction, 0x80000fff, "-20: 12 low bits");
  });

  it("isZeroTimestampAt sees only all-zero octets", () => {
    const buf = new Uint8Array(16);
    assert.equal(isZeroTimestampAt(buf, 4), true);
    for (let i = 4; i < 12; i++) {
      buf[i] = 0x80;
      assert.equal(isZeroTimestampAt(buf, 4), false, `octet ${i}`);
      buf[i] = 0;
    }
    buf[3] = 1;
    buf[12] = 1;
    assert.equal(isZeroTimestampAt(buf, 4), true, "neighbours do not count");
  });
});

describe("short format 16.16 (RFC 5905 §6)", () => {
  it("converts known values", () => {
    assert.equal(secondsToShort(1), 0x00010000);
    assert.equal(secondsToShort(0.5), 0x00008000);
    assert.equal(shortToSeconds(0x00018000), 1.5);
    assert.equal(shortToSeconds(0xffffffff), SHORT_MAX_SECONDS);
    assert.equal(secondsToShort(2 ** -17), 1, "rounded up: a bound is never understated");
  });

  it("clamps to [0, 65535.99998] and maps NaN to 0", () => {
    assert.equal(secondsToShort(-1), 0);
    assert.equal(secondsToShort(Number.NaN), 0);
    assert.equal(secondsToShort(65536), 0xffffffff);
    assert.equal(secondsToShort(Number.POSITIVE_INFINITY), 0xffffffff);
    assert.equal(secondsToShort(Number.NEGATIVE_INFINITY), 0);
  });

  it("secondsToShort(shortToSeconds(u)) === u for every uint32", () => {
    fc.assert(fc.property(u32, (u) => secondsToShort(shortToSeconds(u)) === u));
  });

  it("shortToSeconds(secondsToShort(s)) is s rounded up to a multiple of 2^-16", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: SHORT_MAX_SECONDS, noNaN: true }), (s) => {
        const back = shortToSeconds(secondsToShort(s));
        assert.ok(back >= s && back - s <= 2 ** -16, `s=${s} back=${back}`);
      }),
    );
  });
});

describe("timestamp helpers", () => {
  it("compare and recognise zero", () => {
    const t: NtpTimestamp = { seconds: 1, fraction: 2 };
    assert.equal(timestampsEqual(t, { seconds: 1, fraction: 2 }), true);
    assert.equal(timestampsEqual(t, { seconds: 1, fraction: 3 }), false);
    assert.equal(timestampsEqual(t, { seconds: 2, fraction: 2 }), false);
    assert.equal(isZeroTimestamp(ZERO_TIMESTAMP), true);
    assert.equal(isZeroTimestamp({ seconds: 0, fraction: 1 }), false);
    assert.equal(isZeroTimestamp({ seconds: 1, fraction: 0 }), false);
    assert.equal(Object.isFrozen(ZERO_TIMESTAMP), true);
  });
});
